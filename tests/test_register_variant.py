"""The register's public-minimal variant differs from the reference one exactly where variant.py says (issue 11).

Each difference is shown over HTTPS against a started register in the variant, and the last tests send the
same requests to a reference register and find today's answers. What the variant derives from specs/ (the
modelled codes, the modelled members) is asserted on concrete members here, so that a change of the marks
in specs/ that changes an answer shows in this file.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from register_fixtures import REPO, Api, Running, lump_sum_loan, people, start_register, unique

from pcr_register import variant
from pcr_register.validation import Specs

WHO = people()
FINISHED = ("FinishedSuccess", "FinishedPartialSuccess", "FinishedFailed")
OFFSET_MIDNIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00\+0[23]:00$")


@pytest.fixture(scope="module")
def minimal(data_dir: Path) -> Iterator[Running]:
    running = start_register(data_dir, db=data_dir / "minimal.sqlite3",
                             extra_env={variant.ENV_VAR: variant.PUBLIC_MINIMAL})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reference(data_dir: Path) -> Iterator[Running]:
    running = start_register(data_dir, db=data_dir / "reference.sqlite3")
    yield running
    running.stop()


def finished(api: Api, reference: str, deadline_s: float = 60) -> dict[str, Any]:
    """GetBatchStatus until a final state (the variant's processing literal is not the reference's)."""
    end = time.monotonic() + deadline_s
    while True:
        resp = api.post("GetBatchStatus", api.envelope(batchReference=reference))
        assert resp.status_code == 200, resp.text
        if resp.json()["batchStatus"] in FINISHED:
            return resp.json()
        assert time.monotonic() < end, f"batch {reference} not finished: {resp.text}"
        time.sleep(0.05)


def add(api: Api, *loans: dict[str, Any]) -> dict[str, Any]:
    return finished(api, api.submit("AddLoans", "loans", list(loans)))


def extract_flat(api: Api, id_code: str) -> httpx.Response:
    return api.post("GetCreditRegisterExtract", api.envelope(
        idCodeType="PersonalIdentityCode", idCode=id_code, creditRegisterExtractPurpose=["NewConsumerCredit"]),
        role="using-data")


def mixed_batch(api: Api, tag: str) -> dict[str, Any]:
    """One accepted loan, one rejected with D23 (modelled), one with D02 (third-party), one with E20 (official)."""
    ok = lump_sum_loan(unique(f"{tag}-ok"), WHO.active[0], "R-ok")
    d23 = lump_sum_loan(unique(f"{tag}-d23"), WHO.active[1], "R-d23", borrowersCount=1,
                        borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[1]},
                                   {"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[2]}])
    d02 = lump_sum_loan(unique(f"{tag}-d02"), WHO.active[3], "R-d02")
    d02["lumpSumLoan"] = {**d02["lumpSumLoan"], "amountPaid": 20000.0}
    e20 = lump_sum_loan(unique(f"{tag}-e20"), WHO.unknown, "R-e20")
    return add(api, ok, d23, d02, e20)


def results(status: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {r["reportReference"]: [(e["fieldName"], e["errorCode"]) for e in r["errorResponses"]]
            for r in status["reportResults"]}


# -- what the variant derives from specs/ -------------------------------------------------------------------

def test_modelled_codes_map_to_codes_of_their_own() -> None:
    """Every modelled code of errors.yaml has a variant code of the same form; public codes have none."""
    specs = Specs.load(REPO / "specs")
    mapping = variant.code_map(specs)
    public = {c for c, e in specs.error_codes.items() if e.provenance in variant.PUBLIC}
    assert {"D02", "D21", "D30", "D31", "D40", "E20", "E21"} <= public
    assert set(mapping) == set(specs.error_codes) - public
    assert mapping["D60"] == "Q60" and mapping["H04"] == "U04" and mapping["P01"] == "C01"
    assert len(set(mapping.values())) == len(mapping)
    assert not set(mapping.values()) & set(specs.error_codes)
    assert all(re.fullmatch(r"[A-Z][0-9]{2}", v) for v in mapping.values())


def test_offset_date_time_follows_finnish_summer_time() -> None:
    assert variant.offset_date_time("2026-03-01") == "2026-03-01T00:00:00+02:00"
    assert variant.offset_date_time("2026-07-01") == "2026-07-01T00:00:00+03:00"


def test_an_unknown_variant_is_refused_by_name(data_dir: Path) -> None:
    """serve --variant names the allowed variants and exits 2 (also for the environment variable)."""
    for args, env in ((["--variant", "public"], {}), ([], {variant.ENV_VAR: "minimal"})):
        proc = subprocess.run([sys.executable, "-m", "pcr_register.cli", "serve", "--data", str(data_dir),
                               "--port", "0", *args], capture_output=True, text=True, timeout=60, cwd=REPO,
                              env={"PATH": "", **env, "PYTHONPATH": str(REPO / "src")})
        assert proc.returncode == 2, proc.stderr
        assert "reference, public-minimal" in proc.stderr


# -- the variant over HTTPS ---------------------------------------------------------------------------------

def test_modelled_error_codes_are_the_variants_own(minimal: Running) -> None:
    """Modelled codes change, in the same place, with the same status and field; public codes do not."""
    api = Api(minimal)
    unknown = api.post("GetBatchStatus", api.envelope(batchReference=unique("NONE")))
    assert unknown.status_code == 404
    assert [(e["fieldName"], e["errorCode"]) for e in unknown.json()["errorResponses"]] == [("batchReference", "Q60")]
    schema = api.post("GetLoan", api.envelope(loanNumber={"type": "Other"}))
    assert schema.status_code == 400
    assert [(e["fieldName"], e["errorCode"]) for e in schema.json()["errorResponses"]] == [("/loanNumber/number", "Q01")]
    no_path = api.client("reporting").post("/NoSuchOperation", json={})
    assert no_path.status_code == 404 and no_path.json()["errorResponses"][0]["errorCode"] == "U04"
    per_report = results(mixed_batch(api, "codes"))
    assert per_report["R-ok"] == []
    assert per_report["R-d23"] == [("/loans/1/borrowersCount", "Q23")]
    assert per_report["R-d02"] == [("/loans/2/lumpSumLoan/amountPaid", "D02")]
    assert [code for _, code in per_report["R-e20"]] == ["E20"]
    foreign = Api(minimal, "lender-foreign")
    d40 = foreign.post("GetLoan", {**foreign.envelope(loanNumber={"type": "Other", "number": "X"}),
                                   "owner": {"idCodeType": "ForeignBusinessId", "idCode": "5560000000"}})
    assert d40.status_code == 400 and [e["errorCode"] for e in d40.json()["errorResponses"]] == ["D40"]


def test_batch_status_answers_only_what_is_evidenced(minimal: Running) -> None:
    """GetBatchStatus: batchStatus, reportCount, reportResults (reference and errors, no status), and an extra member."""
    status = mixed_batch(Api(minimal), "members")
    assert set(status) == {"batchStatus", "reportCount", "reportResults", variant.EXTRA_MEMBER}
    assert status["batchStatus"] == "FinishedPartialSuccess" and status["reportCount"] == 4
    for result in status["reportResults"]:
        assert set(result) == {"reportReference", "errorResponses", variant.EXTRA_MEMBER}


def test_the_processing_literal_is_the_variants_and_faults_still_work(data_dir: Path) -> None:
    """With the fault batch_stuck_processing (BAT-010) the variant's batch stays BeingProcessed."""
    running = start_register(data_dir, db=data_dir / "stuck.sqlite3", faults="batch_stuck_processing",
                             extra_env={variant.ENV_VAR: variant.PUBLIC_MINIMAL})
    try:
        api = Api(running)
        reference = api.submit("AddLoans", "loans", [lump_sum_loan(unique("stuck"), WHO.active[4], "R1")])
        time.sleep(0.5)
        status = api.post("GetBatchStatus", api.envelope(batchReference=reference)).json()
        assert status["batchStatus"] == "BeingProcessed"
        assert "Processing" not in str(status)
        api.close()
    finally:
        running.stop()


def test_no_status_message_on_success(minimal: Running) -> None:
    """202 and 200 answers carry no statusMessage; error answers still do."""
    api = Api(minimal)
    accepted = api.post("AddLoans", api.envelope(loans=[lump_sum_loan(unique("msg"), WHO.active[5], "R1")]),
                        headers={"BatchReference": unique("B")})
    assert accepted.status_code == 202 and "statusMessage" not in accepted.json()
    extract = api.extract(WHO.active[6])
    assert extract.status_code == 200 and "statusMessage" not in extract.json()
    error = api.post("GetBatchStatus", api.envelope(batchReference=unique("NONE")))
    assert error.json()["statusMessage"] == "Failed to process the request."


def test_extract_leaves_out_modelled_members_writes_offset_dates_and_adds_a_member(minimal: Running) -> None:
    """The extract: no extractOutcome, notices, lastRepayment or purposeOfUse; dates at midnight Finnish time;
    lender and guarantees (official) stay; registerBuild in every open object."""
    api = Api(minimal)
    person, guarantor = WHO.active[7], WHO.active[8]
    loan = lump_sum_loan(unique("ext"), person, "R1", contractDate="2024-03-01",
                         guarantors=[{"idCodeType": "PersonalIdentityCode", "idCode": guarantor}],
                         defermentPeriods=[{"startDate": "2024-07-01", "endDate": "2024-08-31"}])
    assert add(api, loan)["batchStatus"] == "FinishedSuccess"
    repayment = {"reportReference": "P1", "reportType": "NewReport", "loanType": "LumpSumLoan",
                 "loanNumber": loan["loanNumber"], "reportCreationTimeUtc": "2024-04-01T08:00:00Z",
                 "lumpSumLoanRepayment": {"amortizationPaid": 100.0, "balance": 8900.0, "interestPaid": 40.0,
                                          "otherExpenses": 0.0, "paymentDate": "2024-03-31"}}
    assert finished(api, api.submit("Repayments", "repayments", [repayment]))["batchStatus"] == "FinishedSuccess"
    body = api.extract(person).json()
    extract = body["creditRegisterExtract"]
    assert "extractOutcome" not in extract and "notices" not in extract
    [one] = extract["loans"]
    assert "lastRepayment" not in one and "purposeOfUse" not in one["lumpSumLoan"]
    assert one["lender"]["name"] == "Lender A Oy"
    assert one["contractDate"] == "2024-03-01T00:00:00+02:00"
    assert one["defermentPeriods"][0]["startDate"] == "2024-07-01T00:00:00+03:00"
    assert extract["repaymentsPaidLastAmount"] == [{"currencyCode": "EUR", "sum": 140.0, variant.EXTRA_MEMBER:
                                                    variant.EXTRA_VALUE}]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", extract["creationTimeUtc"])  # not a date
    for obj in (body, extract, one, one["lender"], one["lumpSumLoan"], extract["creditInformationSummary"]):
        assert obj[variant.EXTRA_MEMBER] == variant.EXTRA_VALUE
    guarantees = api.extract(guarantor).json()["creditRegisterExtract"]["guarantees"]
    assert len(guarantees) == 1 and guarantees[0]["lender"]["idCode"] == one["lender"]["idCode"]


def test_official_notices_stay_on_the_extract(minimal: Running) -> None:
    """A person not found keeps the E20 notice (EXT-011, official); the deceased person keeps an offset
    date of death."""
    api = Api(minimal)
    extract = api.extract(WHO.unknown).json()["creditRegisterExtract"]
    assert [n["errorCode"] for n in extract["notices"]] == ["E20"] and "extractOutcome" not in extract
    deceased = api.extract(WHO.deceased).json()["creditRegisterExtract"]["personRequested"]
    assert OFFSET_MIDNIGHT.match(deceased["dateOfDeath"]), deceased


def test_the_flat_extract_form_is_accepted_silently(minimal: Running) -> None:
    api = Api(minimal)
    flat = extract_flat(api, WHO.active[9])
    assert flat.status_code == 200, flat.text
    extract = flat.json()["creditRegisterExtract"]
    assert extract["personRequested"]["idCode"] == WHO.active[9] and "notices" not in extract


# -- the reference variant on the same requests -------------------------------------------------------------

def test_the_reference_variant_is_unchanged(reference: Running) -> None:
    """The same requests to a register without a variant: modelled codes, all members, dates, literals as today."""
    api = Api(reference)
    unknown = api.post("GetBatchStatus", api.envelope(batchReference=unique("NONE")))
    assert unknown.status_code == 404 and unknown.json()["errorResponses"][0]["errorCode"] == "D60"
    assert variant.EXTRA_MEMBER not in unknown.json()
    status = mixed_batch(api, "ref")
    assert set(status) == {"batchReference", "batchStatus", "reportCount", "acceptedCount", "rejectedCount",
                           "receivedTimeUtc", "finishedTimeUtc", "reportResults"}
    assert results(status)["R-d23"] == [("/loans/1/borrowersCount", "D23")]
    assert {r["status"] for r in status["reportResults"]} == {"Accepted", "Rejected"}
    person = WHO.active[10]
    loan = lump_sum_loan(unique("ref-ext"), person, "R1", contractDate="2024-03-01")
    assert add(api, loan)["batchStatus"] == "FinishedSuccess"
    body = api.extract(person).json()
    assert body["statusMessage"] == "The request succeeded"
    extract = body["creditRegisterExtract"]
    assert extract["extractOutcome"] == "LoansFound" and extract["notices"] == []
    assert extract["loans"][0]["contractDate"] == "2024-03-01"
    assert extract["loans"][0]["lumpSumLoan"]["purposeOfUse"] == "OtherConsumerCredit"
    assert variant.EXTRA_MEMBER not in str(body)
    accepted = api.post("AddLoans", api.envelope(loans=[lump_sum_loan(unique("r"), WHO.active[11], "R1")]),
                        headers={"BatchReference": unique("B")})
    assert accepted.json()["statusMessage"] == "Accepted"


def test_the_reference_variant_warns_about_the_flat_extract_form(reference: Running) -> None:
    """The flat form is accepted with notice N01 naming `request`; a mix of both forms is 400 D01."""
    api = Api(reference)
    flat = extract_flat(api, WHO.active[12])
    assert flat.status_code == 200, flat.text
    extract = flat.json()["creditRegisterExtract"]
    assert extract["personRequested"]["idCode"] == WHO.active[12]
    assert [(n["fieldName"], n["errorCode"]) for n in extract["notices"]] == [("request", "N01")]
    assert "nests them in request" in extract["notices"][0]["errorDescription"]
    nested = api.extract(WHO.active[12]).json()["creditRegisterExtract"]
    assert nested["notices"] == []
    mixed = api.post("GetCreditRegisterExtract", api.envelope(
        idCode=WHO.active[12], request={"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[12],
                                        "creditRegisterExtractPurpose": ["NewLoan"]}), role="using-data")
    assert mixed.status_code == 400
    assert {e["errorCode"] for e in mixed.json()["errorResponses"]} == {"D01"}
    bad = extract_flat(api, WHO.active[12][:-1] + ("X" if WHO.active[12][-1] != "X" else "Y"))
    assert bad.status_code == 400 and [(e["fieldName"], e["errorCode"]) for e in bad.json()["errorResponses"]] == [
        ("/idCode", "D04")]
