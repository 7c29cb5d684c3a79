"""A small reference client: what a lender's loan system does, talking to `pcr-conformance proxy`
(docs/client-testing.md). It reports a few new loans on the day they were agreed, polls GetBatchStatus with
back-off until a final state, re-sends only the rejected reports after FinishedPartialSuccess (a new batch, new
report references), corrects an accepted loan with an UpdateLoans ErrorCorrection, respects 429 / 503
Retry-After, and requests one credit register extract with a purpose.

`--fault NAME` seeds one client fault (FAULTS: name -> the requirement it breaks), the self-test idea of the
register's fault switches turned round: the proxy's verdict must name that requirement.

    python tests/reference_client.py reports/proxy/reference/proxy.json [--fault NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import uuid
from typing import Any

import httpx

from pcr_conformance import messages
from pcr_conformance.client import ssl_context
from pcr_conformance.identifiers import hetu, with_wrong_check_character
from pcr_conformance.testdata import load_pool

FAULTS = {
    "no_batch_reference": "CLI-002",  # the first submission goes without the BatchReference header
    "reused_reference": "CLI-003",  # the second batch reuses the first batch's reference, other content
    "abandon_batch": "CLI-004",  # the first batch is never polled
    "tight_polling": "CLI-005",  # polls every 0.1 s
    "resend_whole_batch": "CLI-006",  # after FinishedPartialSuccess the whole batch goes again
    "wrong_owner": "CLI-007",  # the owner is another organisation than the certificate's
    "ignore_retry_after": "CLI-010",  # a 429 / 503 is retried at once
    "no_purpose": "CLI-011",  # the extract request has no purpose
    "bad_identity_code": "CLI-001",  # a borrower's code has a wrong check character
    "real_identity_code": "CLI-012",  # a borrower's code is outside the artificial range
    "re_add_loan": "CLI-008",  # the correction of an accepted loan goes as a new AddLoans NewReport
    "late_new_loan": "CLI-009",  # a new loan is reported three days after its contract date
}
FINAL = ("FinishedSuccess", "FinishedPartialSuccess", "FinishedFailed")
POLL_FIRST_S, POLL_FACTOR, POLL_MAX_S, POLL_DEADLINE_S = 1.0, 1.5, 5.0, 60.0
LATE_DAYS = 3  # late_new_loan: CLI-009 allows the calendar day after the contract date


def persons_of(pool_file: str) -> list[str]:
    """The pool persons the client lends to (alive, known, code in use); loan i's borrower is borrower(.., i)."""
    pool = load_pool(pool_file)
    return [p.id_code for p in pool.persons if not {"deceased", "unknown", "not-in-use"} & set(p.tags)]


def borrower(persons: list[str], i: int) -> str:
    return persons[i % len(persons)]


class Client:
    def __init__(self, info: dict[str, Any], fault: str) -> None:
        self.info, self.fault, self.run = info, fault, uuid.uuid4().hex[:8]
        self.env = info.get("environment", "Test")
        self.http = {slot: httpx.Client(verify=ssl_context(info["ca_bundle"], i["cert"], i["key"]), timeout=20)
                     for slot, i in info["identities"].items() if slot in ("lender", "lender_extract", "second_lender")}
        self.owner = info["identities"]["lender"]["owner"]
        self.persons = persons_of(info["pool"])
        self.n = 0

    def envelope(self) -> dict[str, Any]:
        owner = self.owner
        if self.fault == "wrong_owner":
            owner = self.info["identities"]["second_lender"]["owner"]
        return {"targetEnvironment": self.env, "owner": dict(owner)}

    def post(self, slot: str, operation: str, body: dict[str, Any], ref: str | None = None) -> httpx.Response:
        """One request; a 429 / 503 is retried (same body, same reference) after its Retry-After."""
        headers = {"BatchReference": ref} if ref else {}
        for _ in range(10):
            resp = self.http[slot].post(f"{self.info['url']}/{operation}", json=body, headers=headers)
            if resp.status_code not in (429, 503):
                return resp
            wait = float(resp.headers.get("retry-after", "1"))
            time.sleep(0.05 if self.fault == "ignore_retry_after" else wait + 0.1)
        return resp

    def loan(self, i: int) -> dict[str, Any]:
        self.n += 1
        person = borrower(self.persons, i)
        if i == 1 and self.fault == "bad_identity_code":
            person = with_wrong_check_character(person)
        if i == 1 and self.fault == "real_identity_code":
            person = hetu(dt.date(1980, 1, 1), 123)
        report = messages.lump_sum_loan({"type": "Other", "number": f"RC-{self.run}-{i}"}, person,
                                        f"R-{self.run}-{self.n}")
        agreed = dt.date.today()  # CLI-009: reported the day it was agreed
        if i == 1 and self.fault == "late_new_loan":
            agreed -= dt.timedelta(days=LATE_DAYS)
        report["contractDate"] = agreed.isoformat()
        return report

    def submit(self, reports: list[dict[str, Any]], ref: str, operation: str = "AddLoans") -> httpx.Response:
        if self.fault == "no_batch_reference" and ref.endswith("-1"):
            return self.post("lender", operation, {**self.envelope(), "loans": reports})
        return self.post("lender", operation, {**self.envelope(), "loans": reports}, ref)

    def correct(self, report: dict[str, Any]) -> None:
        """The amount of an accepted loan was wrong: an UpdateLoans ErrorCorrection (CLI-008), polled to the end;
        fault re_add_loan sends it as a new AddLoans NewReport instead."""
        self.n += 1
        fixed = {**report, "reportReference": f"R-{self.run}-{self.n}", "reportType": "ErrorCorrection",
                 "lumpSumLoan": {**report["lumpSumLoan"], "amountIssued": 12000.0, "amountPaid": 12000.0}}
        operation = "UpdateLoans"
        if self.fault == "re_add_loan":
            fixed["reportType"], operation = "NewReport", "AddLoans"
        ref = f"Batch_RC_{self.run}-3"
        resp = self.submit([fixed], ref, operation)
        print(f"{operation} {ref} (correction of {report['loanNumber']['number']}): HTTP {resp.status_code}")
        if resp.status_code == 202:
            print(f"GetBatchStatus {ref}: {self.poll(ref)['batchStatus']}")

    def poll(self, ref: str) -> dict[str, Any]:
        wait, deadline = POLL_FIRST_S, time.monotonic() + POLL_DEADLINE_S
        while time.monotonic() < deadline:
            time.sleep(0.1 if self.fault == "tight_polling" else wait)
            resp = self.post("lender", "GetBatchStatus", {**self.envelope(), "batchReference": ref})
            answer = resp.json() if resp.status_code == 200 else {}
            if answer.get("batchStatus") in FINAL:
                return answer
            wait = min(wait * POLL_FACTOR, POLL_MAX_S)
        raise SystemExit(f"batch {ref} did not finish within {POLL_DEADLINE_S} s")

    def main(self) -> int:
        reports = [self.loan(i) for i in range(1, 5)]
        ref = f"Batch_RC_{self.run}-1"
        resp = self.submit(reports, ref)
        print(f"AddLoans {ref}: HTTP {resp.status_code}")
        if resp.status_code == 400 and self.fault == "no_batch_reference":
            resp = self.post("lender", "AddLoans", {**self.envelope(), "loans": reports}, ref)
        if resp.status_code == 202 and self.fault != "abandon_batch":
            status = self.poll(ref)
            print(f"GetBatchStatus {ref}: {status['batchStatus']}")
            accepted = {r["reportReference"] for r in status.get("reportResults", []) if r["status"] == "Accepted"}
            if status["batchStatus"] == "FinishedPartialSuccess":
                rejected = {r["reportReference"] for r in status.get("reportResults", []) if r["status"] == "Rejected"}
                again = reports if self.fault == "resend_whole_batch" else [r for r in reports
                                                                            if r["reportReference"] in rejected]
                self.n += 1
                again = [{**r, "reportReference": f"R-{self.run}-{self.n}-{k}"} for k, r in enumerate(again)]
                ref2 = ref if self.fault == "reused_reference" else f"Batch_RC_{self.run}-2"
                resp2 = self.submit(again, ref2)
                print(f"AddLoans {ref2} (re-send of {len(again)} report(s)): HTTP {resp2.status_code}")
                if resp2.status_code == 202:
                    print(f"GetBatchStatus {ref2}: {self.poll(ref2)['batchStatus']}")
            elif self.fault == "reused_reference":
                resp2 = self.submit([self.loan(9)], ref)
                print(f"AddLoans {ref} again with other content: HTTP {resp2.status_code}")
            if reports[1]["reportReference"] in accepted:
                self.correct(reports[1])
        request: dict[str, Any] = {"idCodeType": "PersonalIdentityCode", "idCode": self.persons[0],
                                   "creditRegisterExtractPurpose": ["NewConsumerCredit"]}
        if self.fault == "no_purpose":
            request["creditRegisterExtractPurpose"] = []
        resp = self.post("lender_extract", "GetCreditRegisterExtract", {**self.envelope(), "request": request})
        print(f"GetCreditRegisterExtract: HTTP {resp.status_code}")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proxy_json", help="the proxy's connection file (OUTPUT/proxy/<target>/proxy.json)")
    parser.add_argument("--fault", default="", choices=["", *FAULTS], help="seed one client fault")
    args = parser.parse_args(argv)
    with open(args.proxy_json, encoding="utf-8") as f:
        info = json.load(f)
    return Client(info, args.fault).main()


if __name__ == "__main__":
    sys.exit(main())
