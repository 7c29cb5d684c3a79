"""The Locust user classes of `pcr-conformance load` (docs/load.md): a locustfile, run only by Locust's own
processes (`locust -f <this file>`, local, master or worker), never imported by the harness (Locust patches the
standard library with gevent on import).

Every request goes through the harness's own ApiClient (client.py): the target file's certificates (mutual
TLS), timeout, answer bound and rate limit (the target's rate shared out over the workers), the data pool's
artificial identity codes and run-unique loan numbers and references (testdata.py), and the loan ledger that
cleanup.py cancels at the end for a shared environment. Each call becomes a Locust request event named by its
operation, so Locust's statistics, HTML and CSV show every operation; what they cannot hold (batches final
and lost, loans missing, server errors) is counted in a load_results.Tally, sent to the master with Locust's
reports. The master (or the local runner) stops the run after --pcr-run-time, lets users finish their task
(--stop-timeout), and writes the results file the load kit judges.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import gevent
from locust import User, between, events, task
from locust.exception import StopUser
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from pcr_conformance import cleanup, judging, load_results, messages, suite
from pcr_conformance.calllog import CallLog
from pcr_conformance.client import ApiClient, Clients, HttpPool
from pcr_conformance.errors import HarnessError, RequirementFailure
from pcr_conformance.impl_profile import load_profile
from pcr_conformance.target import Target, load_target, parse_target, replace
from pcr_conformance.testdata import TestData, load_pool, new_run_id

# The batch size mix (modelled: no public figure gives the sizes lenders send): most batches carry one
# loan (a loan system reporting as it grants), fewer a day's worth, a few a bulk upload; (reports, weight).
SIZE_MIX = ((1, 50), (10, 30), (100, 15), (1000, 5))
CHECKED_LOANS = 5  # a batch of up to this many reports has every accepted loan checked, larger ones 3
NUMBERS_PER_WORKER = 10_000_000  # each worker numbers its loans and references from (index + 1) * this
FINAL_REPORT_WAIT_S = 15.0  # after stopping, the master waits this long at most for each worker's last report
ORDER_POLLS = 8


class Context:
    """What every user of one Locust process shares: the target, the pool, the HTTP clients, the tally."""

    def __init__(self, environment: Any) -> None:
        options = environment.parsed_options
        runner = environment.runner
        self.target = _target(options, worker=isinstance(runner, WorkerRunner))
        profile = load_profile(self.target.implementation_profile)
        judging.configure(self.target.contract, profile)  # the batch deadline of wait_batch (BAT-010)
        workers = max(1, int(getattr(options, "expect_workers", 1) or 1)) if isinstance(runner, WorkerRunner) else 1
        index = int(getattr(runner, "worker_index", 0) or 0) if isinstance(runner, WorkerRunner) else 0
        self.http = HttpPool(replace(self.target, rate_limit_per_s=self.target.rate_limit_per_s / workers))
        pool = load_pool(self.target.pool) if self.target.pool else None
        # The run id is the pytest session's, whose own tests number from 1: each Locust process its own range.
        self.data = TestData(pool, options.pcr_run_id or new_run_id(), first=1 + (index + 1) * NUMBERS_PER_WORKER)
        self.persons = self.data.candidates(None)
        self.ledger = cleanup.LoanLedger()
        self.tally = load_results.Tally()
        self.cleanup = options.pcr_cleanup == "yes"
        self.started = time.time()

    def clients(self, log: CallLog) -> Clients:
        return Clients(self.target, self.http, log, self.data.batch_reference, ledger=self.ledger)


_context: Context | None = None
_MASTER: dict[str, Any] = {}  # "environment": this process's Locust environment
_OWN_TARGET: dict[str, str] = {}  # "path": a worker's own --pcr-own-target, as it was started


def _target(options: Any, *, worker: bool) -> Target:
    """A worker given its own remote target file uses it (its certificates are on its machine); otherwise the
    target the master (or this process) was started with, as written by the load command."""
    own = _OWN_TARGET.get("path", "")
    if worker and own:
        mine = load_target(own)
        if not mine.embedded:
            return mine
    path = Path(options.pcr_target_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HarnessError(f"--pcr-target-file {path}: cannot read the run's target ({e}); start the worker "
                           f"with --target of a target file on this machine") from e
    return parse_target(data, path)


def context() -> Context:
    if _context is None:
        raise StopUser()
    return _context


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--pcr-target-file", default="", include_in_web_ui=False,
                        help="the run's target as JSON (written by pcr-conformance load)")
    parser.add_argument("--pcr-own-target", default="", include_in_web_ui=False,
                        help="a worker's own target file (a remote target whose certificates are on this machine)")
    parser.add_argument("--pcr-results", default="", include_in_web_ui=False, help="results file to write")
    parser.add_argument("--pcr-run-time", type=float, default=0.0, include_in_web_ui=False, help="0: until stopped")
    parser.add_argument("--pcr-run-id", default="", include_in_web_ui=False, help="the run id of the run's data")
    parser.add_argument("--pcr-cleanup", default="no", choices=("yes", "no"), include_in_web_ui=False,
                        help="cancel the loans reported, at the end")


@events.test_start.add_listener
def _start(environment: Any, **_: Any) -> None:
    global _context
    if isinstance(environment.runner, MasterRunner):
        _context = None
        environment.pcr_tally = load_results.Tally()
        environment.pcr_reports = {}
    else:
        _context = Context(environment)
        environment.pcr_tally = _context.tally
    if not isinstance(environment.runner, WorkerRunner) and environment.parsed_options.pcr_run_time > 0:
        gevent.spawn(_finish_after, environment, environment.parsed_options.pcr_run_time)


@events.report_to_master.add_listener
def _report(client_id: str, data: dict[str, Any]) -> None:
    if _context is not None:
        data["pcr_tally"] = _context.tally.take()


@events.worker_report.add_listener
def _worker_report(client_id: str, data: dict[str, Any]) -> None:
    env = _MASTER.get("environment")
    if env is not None and "pcr_tally" in data and hasattr(env, "pcr_tally"):
        env.pcr_tally.merge(data["pcr_tally"])
        env.pcr_reports[client_id] = time.monotonic()


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    _MASTER["environment"] = environment
    options = environment.parsed_options
    if options is None:
        return
    # Kept now: the master's options overwrite a worker's own when the test starts (Locust sends them on).
    _OWN_TARGET["path"] = options.pcr_own_target
    if not options.pcr_run_id:
        options.pcr_run_id = new_run_id()  # sent on to every worker with the spawn message


@events.test_stop.add_listener
def _stop(environment: Any, **_: Any) -> None:
    """Each process cancels the loans it reported (a shared environment), after its users finished. A run
    without a run time (web UI) ends here."""
    if not isinstance(environment.runner, WorkerRunner) and not environment.parsed_options.pcr_run_time \
            and not getattr(environment, "pcr_written", False):
        gevent.spawn(_after_ui_stop, environment)
    ctx = _context
    if ctx is None or not ctx.cleanup or not len(ctx.ledger):
        return
    result = cleanup.cancel_all(ctx.ledger, ctx.clients(CallLog()).get, ctx.data.report_reference)
    ctx.tally.cleanup.append(result.line())


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner) and not getattr(environment, "pcr_written", False):
        _write_results(environment)


def _finish_after(environment: Any, run_time: float) -> None:
    """Stop after run_time, let every user finish its task, collect the workers' last counts, write the
    results, quit. Locust's own --run-time quits without waiting for the workers' last reports, and a worker
    told to stop sleeps --stop-timeout before it reads the next message; told to quit, a worker lets its users
    finish (--stop-timeout), cleans up (test_stop) and sends its last report, which the master waits for."""
    gevent.sleep(run_time)
    runner = environment.runner
    stopped = time.monotonic()
    if isinstance(runner, MasterRunner):
        workers = {c.id for c in runner.clients.all} | set(environment.pcr_reports)
        for worker in workers:
            runner.server.send_to_client(Message("quit", None, worker))
        _await_reports(environment, stopped, float(environment.stop_timeout or 0) + FINAL_REPORT_WAIT_S)
    else:
        runner.stop()  # the users finish their task within --stop-timeout; test_stop cleans up
    _write_and_quit(environment)


def _after_ui_stop(environment: Any) -> None:
    """Web UI without a run time: the test the user stopped in the UI is the run; the workers report their
    last counts every few seconds after stopping, then the results are written and Locust quits."""
    stopped = time.monotonic()
    if isinstance(environment.runner, MasterRunner):
        _await_reports(environment, stopped, FINAL_REPORT_WAIT_S)
        for worker in environment.pcr_reports:
            environment.runner.server.send_to_client(Message("quit", None, worker))
    _write_and_quit(environment)


def _await_reports(environment: Any, since: float, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(t <= since for t in environment.pcr_reports.values()):
        gevent.sleep(0.2)


def _write_and_quit(environment: Any) -> None:
    _write_results(environment)
    environment.runner.quit()
    if environment.web_ui is not None:
        environment.web_ui.stop()


def _write_results(environment: Any) -> None:
    options = environment.parsed_options
    if not options.pcr_results:
        return
    environment.pcr_written = True
    stats = environment.stats
    requests = {name: load_results.request_stats(entry) for (name, method), entry in stats.entries.items()
                if method == "POST"}
    runner = environment.runner
    workers = len(environment.pcr_reports) if isinstance(runner, MasterRunner) else 0  # those that reported
    started = float(stats.start_time or time.time())
    load_results.write(Path(options.pcr_results), {
        "target": json.loads(Path(options.pcr_target_file).read_text(encoding="utf-8")).get("name", ""),
        "options": {"users": options.num_users, "spawn_rate": options.spawn_rate, "run_time_s": options.pcr_run_time,
                    "workers": workers, "run_id": options.pcr_run_id, "size_mix": [list(m) for m in SIZE_MIX]},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "requests": requests,
        "tally": getattr(environment, "pcr_tally", load_results.Tally()).as_dict(),
    })


# ---- calls and their statistics ----------------------------------------------------------------------------


def flush(user: User, log: CallLog, ok: tuple[int, ...] = (200, 202)) -> None:
    """Every call of the log as a Locust request event, counted in the tally; then the log is emptied."""
    ctx = context()
    tally = ctx.tally
    for call in log.calls:
        exception: Exception | None = None
        if call.status is None and not call.error and not ctx.http.breaker.tripped:
            continue  # never sent or cut off: its user was stopped at the end of the run
        if call.status is None:
            what = call.error or ctx.http.breaker.tripped
            unanswered = what.startswith("no complete answer")
            tally.add("unanswered" if unanswered else "broken", call.operation, line=f"{call.operation}: {what}")
            exception = RuntimeError(what)
        elif call.status >= 500:
            tally.add("server_errors", f"{call.operation} {call.status}",
                      line=f"{call.operation} {call.status}: {(call.response_body or '')[:300]}")
            exception = RuntimeError(f"HTTP {call.status}")
        elif call.status not in ok:
            tally.add("unexpected", f"{call.operation} {call.status}",
                      line=f"{call.operation} {call.status}: {(call.response_body or '')[:300]}")
            exception = RuntimeError(f"HTTP {call.status}")
        user.environment.events.request.fire(
            request_type="POST", name=call.operation, response_time=call.duration_s * 1000,
            response_length=len(call.response_body or ""), exception=exception, context={})
    log.calls.clear()


class PcrUser(User):
    """A stakeholder's system: one identity slot of the target, its own call log."""

    abstract = True
    slot = ""
    capability = ""
    writes = False
    pool_tag: str | None = None  # the pool persons suite.valid_request draws (None: ordinary persons)

    def on_start(self) -> None:
        ctx = context()
        if not self.slot or self.slot not in ctx.target.identities or not ctx.target.claims(self.capability) \
                or (self.writes and ctx.target.read_only) or not ctx.data.candidates(self.pool_tag):
            raise StopUser()  # the target does not offer this stakeholder: its service levels stay not shown
        self.log = CallLog()
        self.api: ApiClient = ctx.clients(self.log).get(self.slot)

    def call(self, operation: str, body: Any, ok: tuple[int, ...] = (200, 202)) -> Any:
        try:
            return self.api.call(operation, body)
        except HarnessError:
            return None  # counted by flush (no status)
        finally:
            flush(self, self.log, ok)


class LenderReporting(PcrUser):
    """A lender's loan system: batches in the size mix, GetBatchStatus with back-off, GetLoan on accepted loans."""

    weight = 4
    wait_time = between(0.2, 1.0)
    slot = "lender"
    capability = "reporting"
    writes = True

    @task
    def report_batch(self) -> None:
        ctx = context()
        if not ctx.persons:
            raise StopUser()
        size = random.choices([n for n, _ in SIZE_MIX], weights=[w for _, w in SIZE_MIX])[0]
        reports = _batch(ctx, size)
        started = time.monotonic()
        try:
            submission = self.api.submit("AddLoans", reports)
        except HarnessError:
            return
        finally:
            flush(self, self.log)
        if submission.response.status_code != 202:
            return  # counted by flush as unexpected or a server error
        ctx.tally.add("batches_accepted")
        reference = submission.batch_reference
        status = self.wait(reference, size, started)
        if status is not None:
            ctx.tally.final(size, time.monotonic() - started)
            self.check_loans(reference, reports, status)

    def wait(self, reference: str, size: int, started: float) -> dict[str, Any] | None:
        """The final batch status, polled with the harness's back-off (wait_batch) within the batch deadline;
        a server error while polling is asked again (PRF-003 counts it), not taken for a lost batch."""
        limit = float(judging.value("batch_deadline_s", context().target.batch_deadline_s)[0])
        while True:
            try:
                return self.api.wait_batch(reference)
            except RequirementFailure as e:  # BAT-001 (an acknowledged batch unknown) or BAT-010 (never final)
                last = self.log.calls[-1].status if self.log.calls else None
                if e.requirement == "BAT-001" and last is not None and last >= 500 \
                        and time.monotonic() - started < limit:
                    gevent.sleep(0.5)
                    continue
                context().tally.add("batches_lost", line=f"{reference} ({size} reports): {str(e)[:300]}")
                return None
            except HarnessError:
                return None
            finally:
                flush(self, self.log)

    def check_loans(self, reference: str, reports: list[dict[str, Any]], status: dict[str, Any]) -> None:
        ctx = context()
        accepted = {str(r.get("reportReference")) for r in status.get("reportResults") or []
                    if isinstance(r, dict) and not r.get("errorResponses")}
        loans = [r["loanNumber"] for r in reports if r["reportReference"] in accepted]
        if len(loans) > CHECKED_LOANS:
            loans = [loans[0], loans[-1], random.choice(loans[1:-1])]
        for number in loans:
            resp = self.call("GetLoan", self.api.envelope(loanNumber=number), ok=(200,))
            if resp is None:
                continue
            ctx.tally.add("loans_checked")
            if resp.status_code == 404:
                ctx.tally.add("loans_missing", line=f"{number['number']} of batch {reference}: GetLoan 404")


def _batch(ctx: Context, size: int) -> list[dict[str, Any]]:
    """`size` AddLoans reports: one built by the harness's builder, the rest copies with their own loan
    number, report reference and borrower (building each from the schema would cost the load generator more
    than the register)."""
    first = messages.lump_sum_loan(ctx.data.loan_number(), random.choice(ctx.persons), ctx.data.report_reference())
    reports = [first]
    for _ in range(size - 1):
        report = copy.deepcopy(first)
        report["loanNumber"] = ctx.data.loan_number()
        report["reportReference"] = ctx.data.report_reference()
        report["borrowers"] = [messages.borrower(random.choice(ctx.persons))]
        reports.append(report)
    return reports


class LenderExtract(PcrUser):
    """A lender with a data permission asking for extracts during office hours."""

    weight = 4
    wait_time = between(0.2, 1.0)
    slot = "lender_extract"
    capability = "extract"

    @task
    def extract(self) -> None:
        ctx = context()
        if not ctx.persons:
            raise StopUser()
        body = self.api.envelope(request={"idCodeType": "PersonalIdentityCode", "idCode": random.choice(ctx.persons),
                                          "creditRegisterExtractPurpose": ["NewConsumerCredit"]})
        self.call("GetCreditRegisterExtract", body, ok=(200,))


class Authority(PcrUser):
    """An authority ordering data, following the order to its distribution."""

    weight = 1
    wait_time = between(1.0, 3.0)
    slot = "authority"
    capability = "authorities"
    writes = True
    pool_tag = "income"

    @task
    def order(self) -> None:
        body, _ = suite.valid_request("OrderData", self.api, context().data)
        resp = self.call("OrderData", body)
        reference = _member(resp, "orderReference")
        if not reference:
            return
        delay = 0.2
        for _ in range(ORDER_POLLS):
            gevent.sleep(delay)
            delay = min(delay * 2, 2.0)
            status = _member(self.call("GetOrderStatus", self.api.envelope(orderReference=reference), ok=(200,)),
                             "orderStatus")
            if status and status.startswith("Finished"):
                self.call("GetDistribution", self.api.envelope(orderReference=reference), ok=(200,))
                return


class CreditInformationCompany(PcrUser):
    """A credit information company reading the voluntary-ban change feed and single bans."""

    weight = 1
    wait_time = between(0.5, 2.0)
    slot = "cic"
    capability = "voluntary-ban"
    pool_tag = "income"

    @task(3)
    def changes(self) -> None:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(context().started - 86400))
        self.call("GetVoluntaryBanChanges", self.api.envelope(sinceUtc=since), ok=(200,))

    @task(1)
    def ban(self) -> None:
        body, _ = suite.valid_request("GetVoluntaryBan", self.api, context().data)
        self.call("GetVoluntaryBan", body, ok=(200,))


def _member(resp: Any, name: str) -> str:
    try:
        value = resp.json().get(name) if resp is not None and resp.status_code in (200, 202) else None
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""

