"""Report builders (docs/interfaces.md §2, §10): pure functions returning dicts, valid by default.

`**overrides` are merged at the top level of the report; an override with the value OMIT removes the member
(for "member missing" cases). Dates are relative to today so the defaults stay valid on every run:
contract 200 days ago (D36 forbids future contract dates), delayed due dates 90 days ago (D31 needs 60).
Amounts are numbers with two decimals.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from pcr_conformance import specs


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()  # override value that removes a member

CONTRACT_DAYS_AGO = 200


def days_ago(n: int, today: dt.date | None = None) -> str:
    return ((today or dt.date.today()) - dt.timedelta(days=n)).isoformat()


def days_ahead(n: int, today: dt.date | None = None) -> str:
    return ((today or dt.date.today()) + dt.timedelta(days=n)).isoformat()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(x: float) -> float:
    return round(float(x), 2)


def completed(schema_name: str, report: dict[str, Any]) -> dict[str, Any]:
    """The report with every member the contract in use requires and the builder does not set, filled from its
    schema (example, default, const or first enum literal), also inside the objects the builder does set.

    A contract version that adds a required member (2027.1: termination.terminationReason) is exercised by
    the builders unchanged; a member without such a value stays missing (the builder must learn it)."""
    _fill(specs.shared_spec("reporting"), {"$ref": f"#/components/schemas/{schema_name}"}, report)
    return report


def _fill(doc: dict[str, Any], schema: Any, value: Any) -> None:
    schema = specs.resolve(doc, schema)
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return
    properties = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name in value or name not in properties:
            continue
        member = specs.resolve(doc, properties[name])
        for key in ("example", "default", "const"):
            if key in member:
                value[name] = copy.deepcopy(member[key])  # the document is shared (specs.shared_spec)
                break
        else:
            if member.get("enum"):
                value[name] = member["enum"][0]
    for name, member in properties.items():
        if isinstance(value.get(name), dict):
            _fill(doc, member, value[name])


def apply_overrides(report: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set each override at top level in place; OMIT removes the member. Returns the report."""
    for k, v in overrides.items():
        if v is OMIT:
            report.pop(k, None)
        else:
            report[k] = v
    return report


def borrower(id_code: str, business_id: str | None = None) -> dict[str, str]:
    b = {"idCodeType": "PersonalIdentityCode", "idCode": id_code}
    if business_id:
        b["businessId"] = business_id  # stage-2 sole trader (RPT-014)
    return b


def _loan(loan_number: Mapping[str, str], borrower_code: str, report_reference: str, loan_type: str,
          specific: dict[str, Any], *, report_type: str = "NewReport") -> dict[str, Any]:
    return {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "isPeerToPeerLoanBroker": False,
        "lenderMarketingName": "PCR Conformance Credit",
        "contractDate": days_ago(CONTRACT_DAYS_AGO),
        "currencyCode": "EUR",
        "oneTimeServiceFees": money(50),
        "loanType": loan_type,
        "isTransferredFromAnotherLender": False,
        "borrowersCount": 1,
        "borrowers": [borrower(borrower_code)],
        "consumerCredit": {"loanConsumerProtectionAct": "ConsumerCredit", "isGoodsOrServicesRelatedCredit": False},
        "interest": {"totalInterestRatePct": 4.25, "marginPct": 1.5, "interestType": "Euribor",
                     "interestDeterminationPeriod": 12},
        "annualPercentageRate": 4.9,
        "isLoanWithCollateral": False,
        **specific,
    }


def lump_sum_loan(loan_number: Mapping[str, str], borrower: str, report_reference: str, *,
                  amount_issued: float = 10000, amount_paid: float | None = None, balance: float | None = None,
                  purpose_of_use: str = "OtherConsumerCredit", report_type: str = "NewReport",
                  **overrides: Any) -> dict[str, Any]:
    """A LumpSumLoan (AddLoans / UpdateLoans)."""
    paid = amount_issued if amount_paid is None else amount_paid
    specific = {"lumpSumLoan": {
        "amountIssued": money(amount_issued),
        "amountPaid": money(paid),
        "balance": money(paid * 0.95 if balance is None else balance),
        "amortizationFrequency": 1,
        "purposeOfUse": purpose_of_use,
        "repaymentMethod": "Annuities",
        "plannedFinalDueDate": days_ahead(5 * 365),
    }}
    loan = _loan(loan_number, borrower, report_reference, "LumpSumLoan", specific, report_type=report_type)
    return apply_overrides(completed("LoanReport", loan), overrides)


def running_account_loan(loan_number: Mapping[str, str], borrower: str, report_reference: str, *,
                         credit_limit: float = 5000, balance: float = 1200, report_type: str = "NewReport",
                         **overrides: Any) -> dict[str, Any]:
    """A RunningAccountLoan (credit card / credit line)."""
    specific = {"runningAccountLoan": {"creditLimit": money(credit_limit), "balance": money(balance),
                                       "balanceDate": days_ago(1)}}
    loan = _loan(loan_number, borrower, report_reference, "RunningAccountLoan", specific, report_type=report_type)
    loan["interest"] = {"totalInterestRatePct": 9.9, "marginPct": 9.9, "interestType": "FixedInterest",
                        "interestDeterminationPeriod": 0}
    return apply_overrides(completed("LoanReport", loan), overrides)


def leasing_loan(loan_number: Mapping[str, str], borrower: str, report_reference: str, *,
                 monthly_payment: float = 350, transaction_price: float = 18000, report_type: str = "NewReport",
                 **overrides: Any) -> dict[str, Any]:
    """A Leasing contract."""
    specific = {"leasingContract": {"contractPeriodStartDate": days_ago(CONTRACT_DAYS_AGO),
                                    "transactionPrice": money(transaction_price),
                                    "monthlyPayment": money(monthly_payment),
                                    "plannedEndDate": days_ahead(3 * 365)}}
    loan = _loan(loan_number, borrower, report_reference, "Leasing", specific, report_type=report_type)
    loan["interest"] = {"totalInterestRatePct": 5.5, "marginPct": 5.5, "interestType": "FixedInterest",
                        "interestDeterminationPeriod": 0}
    return apply_overrides(completed("LoanReport", loan), overrides)


def guarantee_receivable_loan(loan_number: Mapping[str, str], borrower: str, report_reference: str, *,
                              amount: float = 3000, report_type: str = "NewReport",
                              **overrides: Any) -> dict[str, Any]:
    """A GuaranteeReceivable (Kela only, D20; purpose GuaranteeReceivableForStudentLoan, D21)."""
    loan = lump_sum_loan(loan_number, borrower, report_reference, amount_issued=amount, balance=amount,
                         purpose_of_use="GuaranteeReceivableForStudentLoan", report_type=report_type)
    loan["loanType"] = "GuaranteeReceivable"
    loan["lenderMarketingName"] = "Student loan guarantee"
    loan["interest"] = {"totalInterestRatePct": 0.0, "marginPct": 0.0, "interestType": "InterestFree",
                        "interestDeterminationPeriod": 0}
    return apply_overrides(completed("LoanReport", loan), overrides)


def repayment(loan_number: Mapping[str, str], report_reference: str, *, amortization: float = 150,
              interest: float = 35, other_expenses: float = 5, balance: float = 9350,
              payment_date: str | None = None, loan_type: str = "LumpSumLoan", report_type: str = "NewReport",
              **overrides: Any) -> dict[str, Any]:
    """A lump-sum repayment (amortisation, interest, expenses and the new balance)."""
    return apply_overrides(completed("RepaymentReport", {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "loanType": loan_type,
        "reportCreationTimeUtc": utc_now(),
        "lumpSumLoanRepayment": {
            "amortizationPaid": money(amortization),
            "interestPaid": money(interest),
            "otherExpenses": money(other_expenses),
            "paymentDate": payment_date or days_ago(10),
            "balance": money(balance),
        },
    }), overrides)


def balance_only_repayment(loan_number: Mapping[str, str], report_reference: str, *, balance: float = 9000,
                           payment_date: str | None = None, report_type: str = "NewReport",
                           **overrides: Any) -> dict[str, Any]:
    """A repayment with only the balance (RPT-023)."""
    return apply_overrides(completed("RepaymentReport", {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "loanType": "LumpSumLoan",
        "reportCreationTimeUtc": utc_now(),
        "lumpSumLoanRepayment": {"paymentDate": payment_date or days_ago(10), "balance": money(balance)},
    }), overrides)


def running_account_repayment(loan_number: Mapping[str, str], report_reference: str, *, balance: float = 900,
                              interest: float = 12, other_expenses: float = 3, balance_date: str | None = None,
                              report_type: str = "NewReport", **overrides: Any) -> dict[str, Any]:
    """A running-account balance report through Repayments (RPT-024)."""
    return apply_overrides(completed("RepaymentReport", {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "loanType": "RunningAccountLoan",
        "reportCreationTimeUtc": utc_now(),
        "runningAccountLoanRepayment": {"balance": money(balance), "balanceDate": balance_date or days_ago(5),
                                        "interestPaid": money(interest), "otherExpenses": money(other_expenses)},
    }), overrides)


def delayed_repayment(loan_number: Mapping[str, str], report_reference: str, *, amount: float = 250,
                      original_due_date: str | None = None, is_foreclosed: bool = False,
                      foreclosure_date: str | None = None, report_type: str = "NewReport",
                      **overrides: Any) -> dict[str, Any]:
    """A delayed instalment 90 days overdue (D31 needs >= 60 days; D30 needs a due date after the contract)."""
    report: dict[str, Any] = {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "isDelay": True,
        "delayedAmounts": [{"delayedInstalment": money(amount),
                            "originalDueDate": original_due_date or days_ago(90)}],
        "isForeclosed": is_foreclosed,
    }
    if is_foreclosed:
        report["foreclosureDate"] = foreclosure_date or days_ago(5)
    return apply_overrides(completed("DelayedRepaymentReport", report), overrides)


def clear_delay(loan_number: Mapping[str, str], report_reference: str, *, report_type: str = "NewReport",
                **overrides: Any) -> dict[str, Any]:
    """Clears the loan's delay state: isDelay false, no amounts (RPT-030)."""
    return apply_overrides(completed("DelayedRepaymentReport", {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "isDelay": False,
        "isForeclosed": False,
    }), overrides)


def termination(loan_number: Mapping[str, str], report_reference: str, *, end_date: str | None = None,
                is_terminated: bool = True, transferred: bool = False, report_type: str = "NewReport",
                **overrides: Any) -> dict[str, Any]:
    """A TerminateLoans report (NewReport ends, Cancellation cancels, ErrorCorrection restores/corrects)."""
    return apply_overrides(completed("TerminationReport", {
        "reportReference": report_reference,
        "reportType": report_type,
        "loanNumber": dict(loan_number),
        "termination": {"isTerminated": is_terminated, "endDate": end_date or days_ago(1),
                        "isTransferredToAnotherLender": transferred},
    }), overrides)
