"""The reference register under hostile input (issue 17; ENV-007, ENV-009, ENV-018..ENV-022, SEC-011).

A seeded, bounded bad-input run: 5 000 requests over mutual TLS (random bytes, wrong types, huge strings, deep
nesting, invalid UTF-8, lone surrogates, duplicate members, numbers out of range, wrong content types,
oversize bodies, header abuse sent as raw bytes, other methods, odd paths, missing bodies). No 5xx, every
refusal the error object where HTTP allows a body, nothing unanswered beyond the read deadline, resident
memory flat after a warm-up. Then, per hostile-input fault, that it breaks its rule and only that one.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from register_fixtures import Running, make_data_dir, owner_of, start_register
from register_hostile import Answer, Case, Sender, cases, request

SEED = 17
REQUESTS = 5_000
WARMUP = 2_000
WORKERS = 32
DEADLINE_S = 2.0
MARGIN_S = 3.0
MAX_GROWTH = 0.20


def rss_kb(pid: int) -> int:
    """Resident memory at rest: after the register's trimmer has run (memory.py, every 0.5 s)."""
    time.sleep(1.5)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def problems(case: Case, answer: Answer) -> list[str]:
    """What is wrong with one answer ([] when nothing)."""
    out = []
    if answer.status is None:
        if not case.expect_silence:
            out.append(f"unanswered ({answer.error})")
    elif answer.status >= 500:
        out.append(f"HTTP {answer.status}")
    elif answer.status >= 400 and not case.head and not answer.is_error_object():
        out.append(f"HTTP {answer.status} not the error object: {answer.content_type} {answer.body[:60]!r}")
    elif answer.status < 300 and case.must_refuse:
        out.append(f"HTTP {answer.status} where a refusal was due")
    if answer.elapsed_s > DEADLINE_S + MARGIN_S:
        out.append(f"took {answer.elapsed_s:.1f} s")
    return out


def run(sender: Sender, seed: int, n: int) -> list[tuple[Case, Answer]]:
    batch = list(cases(seed, n))
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(zip(batch, pool.map(sender.send, batch), strict=True))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("robustness-data")
    make_data_dir(path)
    return path


@pytest.fixture(scope="module")
def reg(data_dir: Path) -> Iterator[Running]:
    running = start_register(data_dir, validate_responses=False,
                             extra_env={"PCR_REGISTER_READ_DEADLINE_S": str(DEADLINE_S)})
    yield running
    running.stop()


def test_five_thousand_bad_requests(reg: Running) -> None:
    sender = Sender(reg.url, reg.data, DEADLINE_S + MARGIN_S + 2)
    run(sender, SEED + 1, WARMUP)  # the allocator's high-water mark, the caches, the thread pool
    before = rss_kb(reg.process.pid)
    results = run(sender, SEED, REQUESTS)
    after = rss_kb(reg.process.pid)
    wrong = collections.Counter()
    examples: dict[str, str] = {}
    for case, answer in results:
        for problem in problems(case, answer):
            key = f"{case.kind}: {problem.split(':')[0]}"
            wrong[key] += 1
            examples.setdefault(key, f"{problem} after sending {case.data[:120]!r}")
    kinds = collections.Counter(c.kind.split(":")[0] for c, _ in results)
    statuses = collections.Counter(a.status for _, a in results)
    print(f"\n{REQUESTS} requests {dict(kinds)}; statuses {dict(statuses)}; RSS {before} -> {after} kB")
    assert not wrong, "\n".join(f"{n} x {k}; e.g. {examples[k]}" for k, n in wrong.most_common())
    assert set(kinds) >= {"mutated", "header_abuse", "missing_body", "method", "path", "content_type", "oversize"}
    assert after <= before * (1 + MAX_GROWTH), f"RSS grew {before} -> {after} kB"
    assert reg.process.poll() is None, "the register is still running"
    with reg.client("lender-a", "reporting") as client:  # and still healthy
        resp = client.post("/GetLoan", json={"targetEnvironment": "Test", "owner": owner_of("lender-a"),
                                             "loanNumber": {"type": "Other", "number": "after-the-run"}})
    assert (resp.status_code, resp.json()["errorResponses"][0]["errorCode"]) == (404, "D11")


# -- each hostile-input fault breaks its rule, and only it -------------------------------------------------

def _envelope_with(member: str) -> bytes:
    envelope = json.dumps({"targetEnvironment": "Test", "owner": owner_of("lender-a")})
    return request("POST", "/GetLoan", f"{envelope[:-1]}, {member}}}".encode())


PROBES: dict[str, bytes] = {
    "ENV-018": _envelope_with('"loanNumber": {"type": "Other", "number": "x\\udfff"}'),
    "ENV-019": b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
    "ENV-020": request("POST", "/GetLoan", b"", length="50", headers=["Expect: 100-continue"]),
    "ENV-021": _envelope_with('"loanNumber": {"type": "Other", "number": "a"}, "LOANNUMBER": {"type": "Other", "number": "b"}'),
    "ENV-022": _envelope_with('"loanNumber": {"type": "Other", "number": ' + "9" * 400 + "}"),
}


def verdicts(answers: dict[str, Answer]) -> dict[str, bool]:
    """Per requirement, whether the probe's answer meets it."""
    def refusal(a: Answer, status: int, code: str) -> bool:
        return (a.status == status and a.is_error_object()
                and json.loads(a.body)["errorResponses"][0]["errorCode"] == code)

    return {
        "ENV-018": refusal(answers["ENV-018"], 400, "H01"),
        "ENV-019": refusal(answers["ENV-019"], 400, "H40"),
        "ENV-020": refusal(answers["ENV-020"], 408, "H08") and answers["ENV-020"].elapsed_s < DEADLINE_S + MARGIN_S,
        "ENV-021": refusal(answers["ENV-021"], 400, "D01"),
        "ENV-022": refusal(answers["ENV-022"], 400, "D01"),
    }


def probe(reg: Running) -> dict[str, bool]:
    sender = Sender(reg.url, reg.data, DEADLINE_S + MARGIN_S)
    return verdicts({req: sender.send(Case(req, "GetLoan", data)) for req, data in PROBES.items()})


FAULT_RULE = {"lone_surrogate_500": "ENV-018", "header_abuse_plain_text": "ENV-019", "no_read_deadline": "ENV-020",
              "duplicate_members_last_wins": "ENV-021", "huge_number_500": "ENV-022"}


def test_the_faultless_register_meets_every_probe(reg: Running) -> None:
    assert probe(reg) == dict.fromkeys(PROBES, True)


@pytest.mark.parametrize("fault", sorted(FAULT_RULE))
def test_each_hostile_input_fault_breaks_its_rule_only(fault: str, data_dir: Path, tmp_path: Path) -> None:
    from pcr_register.faults import FAULTS

    assert FAULTS[fault][0] == FAULT_RULE[fault]
    faulty = start_register(data_dir, faults=fault, db=tmp_path / "db.sqlite3", validate_responses=False,
                            extra_env={"PCR_REGISTER_READ_DEADLINE_S": str(DEADLINE_S)})
    try:
        got = probe(faulty)
    finally:
        faulty.stop()
    assert got == {req: req != FAULT_RULE[fault] for req in PROBES}
