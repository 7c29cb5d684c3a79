"""The extract lender's view: what a credit register extract holds for a person.

Pool persons may already have loans from other tests, so each test marks its own loans with a unique
marketing name and checks the summary against the loans the extract itself lists.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pytest

from pcr_conformance import expect, judging
from pcr_conformance import messages as m
from pcr_conformance import suite as s

pytestmark = [pytest.mark.capability("extract"), pytest.mark.capability("reporting")]

OP = "GetCreditRegisterExtract"


def _summary_consistent(extract: dict[str, Any], requirement: str = "EXT-006") -> None:
    summary = extract.get("creditInformationSummary") or {}
    loans, guarantees = extract.get("loans") or [], extract.get("guarantees") or []
    lenders = {((loan.get("lender") or {}).get("idCodeType"), (loan.get("lender") or {}).get("idCode"))
               for loan in loans}
    expected = {"lendersCount": len(lenders), "loanContractsCount": len(loans),
                "guaranteedLoanContractsCount": len(guarantees)}
    actual = {k: summary.get(k) for k in expected}
    expect.that(actual == expected, requirement, OP, f"creditInformationSummary {expected} (from the listed loans)",
                actual)


def _one(extract: dict[str, Any], name: str, requirement: str) -> dict[str, Any]:
    found = s.extract_loans_named(extract, name)
    expect.that(len(found) == 1, requirement, OP, f"exactly one loan marketed as {name!r}",
                f"{len(found)} of {len(extract.get('loans') or [])} loans")
    return dict(found[0])


@pytest.mark.verifies("EXT-005", "EXT-006", "EXT-021", "EXT-022", "ENV-024")
def test_loans_of_two_lenders_with_summary(pcr_clients, pcr_data):
    """Active loans of two lenders appear with their lenders and last reported amounts, and the summary counts them."""
    lender_a, lender_b = pcr_clients.get("lender"), pcr_clients.get("second_lender")
    person = pcr_data.person("income")
    name_a, name_b = s.unique_name(pcr_data, "Lender A loan"), s.unique_name(pcr_data, "Lender B card")
    loan_a = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), amount_issued=15000,
                             balance=14000, lenderMarketingName=name_a)
    loan_b = m.running_account_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), credit_limit=3000,
                                    balance=1234.56, lenderMarketingName=name_b)
    s.report_all_accepted(lender_a, "AddLoans", [loan_a], "EXT-005")
    s.report_all_accepted(lender_b, "AddLoans", [loan_b], "EXT-005")
    # The balance as last reported (EXT-022): a repayment after the loan report.
    s.report_all_accepted(lender_a, "Repayments", [m.repayment(loan_a["loanNumber"], pcr_data.report_reference(),
                                                               balance=13555.55)], "EXT-022")

    extract = s.extract_of(pcr_clients.get("lender_extract"), person, "EXT-005")
    s.modelled_value(extract.get("extractOutcome") == "LoansFound", OP, "extractOutcome LoansFound",
                     extract.get("extractOutcome"))
    on_a, on_b = _one(extract, name_a, "EXT-005"), _one(extract, name_b, "EXT-005")
    for loan, client in ((on_a, lender_a), (on_b, lender_b)):
        lender = loan.get("lender") or {}
        expect.that(lender.get("idCode") == client.owner["idCode"] and lender.get("idCodeType") ==
                    client.owner["idCodeType"] and lender.get("name"), "EXT-021", OP,
                    f"lender {client.owner} with its official name", lender)
    names = [(loan.get("lender") or {}).get("name") for loan in (on_a, on_b)]
    expect.that(names[0] != names[1], "EXT-021", OP, "each loan with its own lender's name (two lenders, two names)",
                names)
    expect.that((on_a.get("lumpSumLoan") or {}).get("balance") == 13555.55, "EXT-022", OP,
                "lump-sum balance 13555.55 as last reported", on_a.get("lumpSumLoan"))
    ra = on_b.get("runningAccountLoan") or {}
    expect.that(ra.get("balance") == 1234.56 and ra.get("creditLimit") == 3000, "EXT-022", OP,
                "running-account balance 1234.56 and credit limit 3000", ra)
    _summary_consistent(extract)
    summary = extract.get("creditInformationSummary") or {}
    expect.that((summary.get("lendersCount") or 0) >= 2, "EXT-006", OP, "lendersCount at least 2",
                summary.get("lendersCount"))


@pytest.mark.verifies("EXT-007", "EXT-008", "EXT-006")
def test_ended_and_cancelled_loans_are_not_shown(pcr_clients, pcr_data):
    """Of an active, an ended and a cancelled loan only the active one is on the extract."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    names = {k: s.unique_name(pcr_data, k) for k in ("Active", "Ended", "Cancelled")}
    loans = {k: m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), lenderMarketingName=v)
             for k, v in names.items()}
    s.report_all_accepted(lender, "AddLoans", list(loans.values()), "EXT-007")
    s.report_all_accepted(lender, "TerminateLoans", [
        m.termination(loans["Ended"]["loanNumber"], pcr_data.report_reference()),
        m.termination(loans["Cancelled"]["loanNumber"], pcr_data.report_reference(), report_type="Cancellation"),
    ], "EXT-007")

    extract = s.extract_of(pcr_clients.get("lender_extract"), person, "EXT-007")
    _one(extract, names["Active"], "EXT-007")
    expect.that(not s.extract_loans_named(extract, names["Ended"]), "EXT-007", OP, "no ended loan on the extract",
                names["Ended"])
    expect.that(not s.extract_loans_named(extract, names["Cancelled"]), "EXT-008", OP,
                "no cancelled loan on the extract", names["Cancelled"])
    _summary_consistent(extract)


@pytest.mark.verifies("EXT-009")
def test_voluntary_ban_in_effect_is_shown(pcr_clients, pcr_data):
    """A voluntary ban in effect appears with its reason; a person without a ban has none in effect."""
    client = pcr_clients.get("lender_extract")
    banned = s.pick_person(pcr_data, having=["voluntary-ban"], without=["deceased", "unknown", "not-in-use"])
    free = s.pick_person(pcr_data, having=["income"], without=["voluntary-ban"])
    ban = s.extract_of(client, banned, "EXT-009").get("voluntaryBanOnCredits") or {}
    expect.that(ban.get("isInEffect") is True and ban.get("reason") in
                ("RiskOfIdentityTheft", "ControlOfPersonalFinances", "Other"), "EXT-009", OP,
                "voluntaryBanOnCredits in effect with a reason", ban)
    other = s.extract_of(client, free, "EXT-009").get("voluntaryBanOnCredits")
    expect.that(not other or other.get("isInEffect") is False, "EXT-009", OP,
                "no ban in effect for a person without one", other)


@pytest.mark.verifies("EXT-010")
def test_income_data_of_twelve_months(pcr_clients, pcr_data):
    """A person with income data gets the twelve past months, each with wages and benefits."""
    person = pcr_data.person("income")
    extract = s.extract_of(pcr_clients.get("lender_extract"), person, "EXT-010")
    months = [(y.get("year"), mo.get("month")) for y in extract.get("incomeData") or []
              for mo in y.get("months") or []]
    expect.that(len(months) == 12 and len(set(months)) == 12, "EXT-010", OP, "12 distinct months of income data",
                months)
    ordered = sorted(months)
    steps = [(b[0] * 12 + b[1]) - (a[0] * 12 + a[1]) for a, b in zip(ordered, ordered[1:], strict=False)]
    expect.that(all(step == 1 for step in steps), "EXT-010", OP, "12 consecutive months", ordered)
    today = dt.date.today()
    latest = ordered[-1][0] * 12 + ordered[-1][1]
    expect.that(0 <= today.year * 12 + today.month - latest <= 2, "EXT-010", OP,
                "the latest month within the past two months", ordered[-1])
    for y in extract.get("incomeData") or []:
        for mo in y.get("months") or []:
            ok = all(isinstance(mo.get(k), int | float) for k in ("wagesGrossAmount", "wagesNetAmount",
                                                                   "benefitsGrossAmount", "benefitsNetAmount"))
            expect.that(ok, "EXT-010", OP, "wages and benefits amounts in every month", mo)


@pytest.mark.verifies("EXT-011", "EXT-012", "EXT-013", "ENV-014", "ENV-023")  # extract_of judges the schema
def test_not_found_deceased_and_not_in_use_outcomes(pcr_clients, pcr_data):
    """Unknown, deceased and not-in-use persons give their billable outcomes, the deceased (only) with the date of death."""
    client = pcr_clients.get("lender_extract")
    unknown = s.extract_of(client, pcr_data.person("unknown"), "EXT-011")
    # extractOutcome and notices are modelled members (ENV-023); the billable answer itself is official.
    s.modelled_value(unknown.get("extractOutcome") == "PersonNotFound" and "E20" in
                     [n.get("errorCode") for n in unknown.get("notices") or []], OP,
                     "PersonNotFound with notice E20", f"{unknown.get('extractOutcome')} {unknown.get('notices')}")
    expect.that(not unknown.get("loans"), "EXT-011", OP, "no loans for a person not found", unknown.get("loans"))

    deceased = pcr_data.person("deceased")
    died = pcr_data.date_of_death(deceased)
    extract = s.extract_of(client, deceased, "EXT-012")
    person = extract.get("personRequested") or {}
    # The official part (the date of death is returned) first, then the modelled outcome literal (ENV-023).
    expect.that(person.get("dateOfDeath") and (died is None or person.get("dateOfDeath") == died), "EXT-012", OP,
                f"dateOfDeath {died or '(any)'}", person.get("dateOfDeath"))
    s.modelled_value(extract.get("extractOutcome") == "PersonDeceased", OP, "extractOutcome PersonDeceased",
                     extract.get("extractOutcome"))
    # EXT-012 in the other direction: a living person is not answered as deceased: no date of death (EXT-012),
    # and not the deceased outcome, whose literal is modelled (ENV-023)
    living = s.extract_of(client, pcr_data.person("income"), "EXT-012")
    expect.that("dateOfDeath" not in (living.get("personRequested") or {}), "EXT-012", OP,
                "no dateOfDeath for a living person", living.get("personRequested"))
    s.modelled_value(living.get("extractOutcome") != "PersonDeceased", OP,
                     "a living person's outcome is not PersonDeceased", living.get("extractOutcome"))

    not_in_use = s.extract_of(client, pcr_data.person("not-in-use"), "EXT-013")
    s.modelled_value(not_in_use.get("extractOutcome") == "IdentifierNotInUse" and "E21" in
                     [n.get("errorCode") for n in not_in_use.get("notices") or []], OP,
                     "IdentifierNotInUse with notice E21",
                     f"{not_in_use.get('extractOutcome')} {not_in_use.get('notices')}")


@pytest.mark.verifies("IDN-007")
def test_century_twins_are_different_persons(pcr_clients, pcr_data):
    """Two codes differing only in the century sign are different persons: a loan of one is not on the other's extract."""
    codes = s.pool_persons(pcr_data, having=["century-twin"])
    by_digits: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        by_digits[code[:6] + code[7:]].append(code)
    pairs = [v for v in by_digits.values() if len(v) >= 2]
    if not pairs:
        pytest.skip("not claimed: the data pool has no pair of century twins")
    first, second = pairs[0][0], pairs[0][1]
    name = s.unique_name(pcr_data, "Twin loan")
    s.report_all_accepted(pcr_clients.get("lender"), "AddLoans", [
        m.lump_sum_loan(pcr_data.loan_number(), first, pcr_data.report_reference(), lenderMarketingName=name)],
        "IDN-007")
    client = pcr_clients.get("lender_extract")
    own = s.extract_of(client, first, "IDN-007")
    _one(own, name, "IDN-007")
    twin = s.extract_of(client, second, "IDN-007")
    expect.that((twin.get("personRequested") or {}).get("idCode") == second, "IDN-007", OP,
                f"personRequested {second}", twin.get("personRequested"))
    expect.that(not s.extract_loans_named(twin, name), "IDN-007", OP,
                f"the loan of {first} not on the extract of {second}", name)


@pytest.mark.verifies("IDN-002")
def test_every_century_sign_is_accepted(pcr_clients, pcr_data):
    """Codes with every century sign are accepted by the extract and by AddLoans (no D04)."""
    from pcr_conformance import identifiers

    client = pcr_clients.get("lender_extract")
    pool = s.pool_persons(pcr_data, without=["deceased", "unknown", "not-in-use"])
    codes = []
    for sign, century in identifiers.CENTURY_SIGNS.items():
        # A pool person with that sign where the pool has one; otherwise an artificial code (individual 950+).
        from_pool = [c for c in pool if c[6] == sign]
        year = century + (95 if century == 1800 else 70 if century == 1900 else 5)
        codes.append(from_pool[0] if from_pool else identifiers.hetu(dt.date(year, 3, 14), 950 + len(codes), sign))
    for code in codes:
        resp = client.extract(code)
        expect.status(resp, 200, "IDN-002", f"{OP} of {code}")
    lender = pcr_clients.get("lender")
    reports = [m.lump_sum_loan(pcr_data.loan_number(), code, pcr_data.report_reference()) for code in codes]
    status = lender.submit_and_wait("AddLoans", reports)
    for report, code in zip(reports, codes, strict=True):
        result = expect.report_result(status, report["reportReference"]) or {}
        malformed, _basis = judging.expected_code("D04")
        # Without a stated code for "malformed": any rejection but the official unknown/not-in-use person (E20, E21).
        bad = [c for c in s.codes_of(result) if (c == malformed if malformed else c not in ("E20", "E21"))]
        expect.that(not bad, "IDN-002", "AddLoans", f"{code} not rejected as malformed ({malformed or 'any code'})",
                    s.codes_of(result))


@pytest.mark.verifies("EXT-020", "EXT-006")
def test_guarantor_sees_guaranteed_loans(pcr_clients, pcr_data):
    """A loan guaranteed by a person is listed and counted under the guarantor's guarantees."""
    borrower, guarantor = pcr_data.person("income"), pcr_data.person("income")
    lender = pcr_clients.get("lender")
    loan = m.lump_sum_loan(pcr_data.loan_number(), borrower, pcr_data.report_reference(), balance=4321.0,
                           amount_issued=5000, guarantors=[{"idCodeType": "PersonalIdentityCode", "idCode": guarantor}],
                           isLoanWithCollateral=True, collateralTypes=["PersonalGuarantee"],
                           lenderMarketingName=s.unique_name(pcr_data, "Guaranteed"))
    s.report_all_accepted(lender, "AddLoans", [loan], "EXT-020")
    extract = s.extract_of(pcr_clients.get("lender_extract"), guarantor, "EXT-020")
    guarantees = extract.get("guarantees") or []
    mine = [g for g in guarantees if (g.get("lender") or {}).get("marketingName") == loan["lenderMarketingName"]]
    expect.that(len(mine) == 1, "EXT-020", OP, f"one guarantee marketed as {loan['lenderMarketingName']!r}",
                f"{len(mine)} of {len(guarantees)} guarantees")
    g = mine[0]
    expect.that(g.get("balance") == 4321.0 and g.get("loanType") == "LumpSumLoan" and g.get("currencyCode") == "EUR"
                and (g.get("lender") or {}).get("idCode") == lender.owner["idCode"], "EXT-020", OP,
                "the guarantee with balance 4321.0, LumpSumLoan, EUR and the lender", g)
    _summary_consistent(extract, "EXT-020")
    expect.that(not s.extract_loans_named(extract, loan["lenderMarketingName"]), "EXT-020", OP,
                "the guaranteed loan not among the guarantor's own loans", loan["lenderMarketingName"])


@pytest.mark.verifies("EXT-017", "EXT-019", "EXT-016")
def test_payment_plan_deferments_delays_and_acceleration(pcr_clients, pcr_data):
    """A payment plan hides the contract date; deferments, delays and acceleration are shown."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    planned = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(),
                              paymentPlan={"isInDebtArrangement": True, "isInBusinessRestructuringProgram": False},
                              lenderMarketingName=s.unique_name(pcr_data, "Payment plan"))
    deferment = {"startDate": m.days_ago(20), "endDate": m.days_ahead(40)}
    plain = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(),
                            defermentPeriods=[deferment], lenderMarketingName=s.unique_name(pcr_data, "Deferred"))
    s.report_all_accepted(lender, "AddLoans", [planned, plain], "EXT-017")
    due, foreclosed_on = m.days_ago(80), m.days_ago(4)
    delayed = m.delayed_repayment(plain["loanNumber"], pcr_data.report_reference(), amount=456.0, original_due_date=due,
                                  is_foreclosed=True, foreclosure_date=foreclosed_on)
    second_due = m.days_ago(70)  # a second delayed instalment: every item of the list is shown, not the first only
    delayed["delayedAmounts"] = [*delayed["delayedAmounts"], {"delayedInstalment": m.money(78.9),
                                                               "originalDueDate": second_due}]
    s.report_all_accepted(lender, "DelayedRepayments", [delayed], "EXT-016")

    extract = s.extract_of(pcr_clients.get("lender_extract"), person, "EXT-017")
    on_plan = _one(extract, planned["lenderMarketingName"], "EXT-017")
    expect.that("contractDate" not in on_plan, "EXT-017", OP, "no contractDate while a payment plan is in effect",
                on_plan.get("contractDate"))
    expect.that((on_plan.get("paymentPlan") or {}).get("isInDebtArrangement") is True, "EXT-017", OP,
                "paymentPlan.isInDebtArrangement true", on_plan.get("paymentPlan"))
    shown = _one(extract, plain["lenderMarketingName"], "EXT-019")
    expect.that(shown.get("contractDate") == plain["contractDate"], "EXT-017", OP,
                f"contractDate {plain['contractDate']} without a payment plan", shown.get("contractDate"))
    mismatch = s.subset_mismatch(shown.get("defermentPeriods"), [deferment])
    expect.that(mismatch is None, "EXT-019", OP, f"defermentPeriods {[deferment]}", mismatch)
    shown_delays = shown.get("delayedAmounts") if isinstance(shown.get("delayedAmounts"), list) else []
    for amount, when in ((456.0, due), (78.9, second_due)):  # in any order
        expect.that(any(s.subset_mismatch(d, {"delayedInstalment": amount, "originalDueDate": when}) is None
                        for d in shown_delays), "EXT-016", OP, f"the delayed instalment {amount} due {when}",
                    shown.get("delayedAmounts"))
    expect.that(shown.get("isForeclosed") is True and shown.get("foreclosureDate") == foreclosed_on, "EXT-016", OP,
                f"isForeclosed true on {foreclosed_on}",
                f"isForeclosed {shown.get('isForeclosed')}, foreclosureDate {shown.get('foreclosureDate')}")


@pytest.mark.verifies("EXT-018")
def test_sums_per_currency(pcr_clients, pcr_data):
    """Latest repayments and leasing instalments are summed per currency over the listed loans."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    eur = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(),
                          lenderMarketingName=s.unique_name(pcr_data, "EUR loan"))
    sek = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), currencyCode="SEK",
                          lenderMarketingName=s.unique_name(pcr_data, "SEK loan"))
    lease_eur = m.leasing_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), monthly_payment=310.5)
    lease_sek = m.leasing_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), monthly_payment=2000,
                               currencyCode="SEK")
    s.report_all_accepted(lender, "AddLoans", [eur, sek, lease_eur, lease_sek], "EXT-018")
    s.report_all_accepted(lender, "Repayments", [
        m.repayment(eur["loanNumber"], pcr_data.report_reference(), amortization=100, interest=20, other_expenses=3),
        m.repayment(sek["loanNumber"], pcr_data.report_reference(), amortization=1000, interest=200,
                    other_expenses=0),
    ], "EXT-018")

    extract = s.extract_of(pcr_clients.get("lender_extract"), person, "EXT-018")
    for loan, amount in ((eur, 123.0), (sek, 1200.0)):
        shown = _one(extract, loan["lenderMarketingName"], "EXT-018")
        last = (shown.get("lastRepayment") or {}).get("amount")
        # lastRepayment is a modelled member (ENV-023); the per-currency sums below are official.
        s.modelled_value(last == amount, OP, f"lastRepayment.amount {amount} (amortisation + interest + "
                         f"other expenses) on {loan['lenderMarketingName']}", last)
    repaid: dict[str, float] = defaultdict(float)
    leasing: dict[str, float] = defaultdict(float)
    for loan in extract.get("loans") or []:
        if loan.get("lastRepayment"):
            repaid[loan.get("currencyCode")] += float(loan["lastRepayment"].get("amount") or 0)
        if loan.get("leasingContract"):
            leasing[loan.get("currencyCode")] += float(loan["leasingContract"].get("monthlyPayment") or 0)
    for member, expected in (("repaymentsPaidLastAmount", repaid), ("sumOfMonthlyLeasingInstalments", leasing)):
        actual = {i.get("currencyCode"): float(i.get("sum") or 0) for i in extract.get(member) or []}
        want = {k: round(v, 2) for k, v in expected.items()}
        got = {k: round(v, 2) for k, v in actual.items()}
        if member == "repaymentsPaidLastAmount" and not any("lastRepayment" in x for x in extract.get("loans") or []):
            # Without the modelled per-loan member the sums can only be bounded by this test's own payments.
            own = {"EUR": 123.0, "SEK": 1200.0}
            expect.that(all(got.get(k, 0) >= v for k, v in own.items()), "EXT-018", OP,
                        f"{member} per currency at least {own}", got)
            continue
        expect.that(got == want, "EXT-018", OP, f"{member} per currency {want}", got)
    expect.that({"EUR", "SEK"} <= set(leasing), "EXT-018", OP, "leasing instalments in EUR and SEK",
                dict(leasing))
