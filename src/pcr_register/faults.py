"""Seeded faults: each switch breaks exactly one requirement (docs/concepts.md#seeded-faults, interfaces.md §8).

The self-test of the suites starts the register with ``PCR_REGISTER_FAULTS=name[,name]`` and requires the
suites to fail naming the requirement. The handlers ask ``faults.on("name")``; nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

ENV_VAR = "PCR_REGISTER_FAULTS"

# name -> (requirement ID, description). Every entry breaks exactly one requirement.
FAULTS: dict[str, tuple[str, str]] = {
    # identifiers
    "accept_invalid_hetu": ("IDN-001", "personal identity codes with a wrong check character are not rejected (reporting and extract)"),
    "accept_invalid_business_id": ("IDN-003", "Business IDs with a wrong check digit are not rejected with D05"),
    "skip_d40": ("IDN-004", "a ForeignBusinessId owner without countryCode is accepted"),
    "unknown_person_accepted": ("IDN-005", "a borrower unknown to the population register is accepted instead of E20"),
    "wrong_error_code_e21": ("IDN-006", "a borrower code known to be not in use is answered E20 instead of E21"),
    # reporting
    "skip_d02": ("RPT-004", "amountPaid greater than amountIssued is accepted"),
    "accept_duplicate_loan_number": ("RPT-005", "AddLoans with a loan number already in the register overwrites it"),
    "whole_batch_fails_on_duplicate": ("RPT-006", "one duplicate loan number rejects every report of the batch (the 2026 defect)"),
    "skip_kela_only_check": ("RPT-009", "any lender may report GuaranteeReceivable"),
    "restore_not_supported": ("RPT-019", "an ErrorCorrection to TerminateLoans does not restore a cancelled loan (D13)"),
    "repayment_ignored": ("RPT-022", "a repayment is accepted but the loan balance is not updated"),
    "skip_due_date_rule": ("RPT-027", "a delayed instalment due before the contract date is accepted"),
    "skip_60_day_rule": ("RPT-028", "a delayed instalment less than 60 days overdue is accepted"),
    "duplicate_report_reference_accepted": ("RPT-034", "report references repeated within a batch are not rejected"),
    # batches
    "batch_stuck_processing": ("BAT-010", "batches are stored but never processed: GetBatchStatus stays Processing"),
    "no_partial_success": ("BAT-003", "a batch with any rejected report is rejected as a whole (FinishedFailed)"),
    "batch_reference_not_idempotent": ("BAT-008", "a resubmitted batch reference with the same content is processed again"),
    # extract
    "skip_extract_permission": ("EXT-004", "a lender without the data permission gets extracts"),
    "extract_wrong_summary": ("EXT-006", "creditInformationSummary.loanContractsCount is one more than the listed loans"),
    "extract_includes_ended_loans": ("EXT-007", "ended loans appear on the extract"),
    "cancelled_loan_on_extract": ("EXT-008", "cancelled loans appear on the extract"),
    "extract_no_ban": ("EXT-009", "a voluntary ban in effect is left off the extract"),
    "extract_income_11_months": ("EXT-010", "the extract holds only 11 months of income data"),
    "deceased_as_not_found": ("EXT-012", "a deceased person gives the PersonNotFound outcome"),
    "no_extract_log": ("EXT-015", "extract requests are not logged (GetExtractLog stays empty)"),
    # envelope and contract
    "missing_correlation_id": ("ENV-005", "error answers carry no correlationId"),
    "server_error_on_bad_json": ("ENV-007", "a body that is not JSON is answered 500"),
    "accept_unknown_members": ("ENV-010", "unknown members are ignored instead of rejected"),
    "accept_missing_members": ("ENV-017", "a missing required member below the envelope is not reported"),
    "schema_drift_extract": ("ENV-014", "the extract response renames creditInformationSummary to creditSummary"),
    # hostile input
    "lone_surrogate_500": ("ENV-018", "a string holding a lone surrogate escape reaches the handler and is answered 500"),
    "header_abuse_plain_text": ("ENV-019", "malformed headers and framing are answered in plain text, as uvicorn does"),
    "no_read_deadline": ("ENV-020", "a promised body that never comes is waited for (bounded at 120 s, not 10 s)"),
    "duplicate_members_last_wins": ("ENV-021", "a member name given twice is accepted, the last value wins"),
    "huge_number_500": ("ENV-022", "a number out of range (1e400, a 500-digit integer) is answered 500"),
    # security
    "ignore_client_cert": ("SEC-001", "connections without a client certificate are accepted as lender-a"),
    "skip_role_check": ("SEC-004", "a certificate of any role may use any API"),
    "skip_owner_type_check": ("SEC-005", "an owner id type contradicting the certificate is accepted"),
    "skip_owner_id_check": ("SEC-006", "an owner other than the certificate's organisation is accepted"),
    "leak_other_lenders_loans": ("SEC-007", "GetLoan returns another lender's loan"),
    "allow_update_other_lender": ("SEC-008", "a lender may change another lender's loan"),
    "batch_status_other_lender": ("SEC-009", "GetBatchStatus shows another lender's batch"),
    # authorities and credit information companies
    "authority_sees_all_credits": ("AUT-006", "a consumer-credit-only authority receives non-consumer loans"),
    "ban_without_consent": ("BAN-002", "a ban is disclosed to credit information companies without consent"),
}


class UnknownFault(ValueError):
    """A fault name not in FAULTS."""


@dataclass(frozen=True)
class Faults:
    """The fault switches active in this process."""

    active: frozenset[str] = frozenset()

    def on(self, name: str) -> bool:
        # A typo in the code must not silently disable a fault: fail loudly.
        if name not in FAULTS:
            raise KeyError(name)
        return name in self.active


def parse(value: str | Iterable[str] | None) -> Faults:
    """Parse ``name[,name]``; an unknown name raises UnknownFault."""
    if value is None:
        return Faults()
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [n.strip() for n in value]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise UnknownFault(f"unknown fault switch(es): {', '.join(unknown)} (see `pcr-register faults`)")
    return Faults(frozenset(names))


def from_env() -> Faults:
    return parse(os.environ.get(ENV_VAR))


def as_list() -> list[dict[str, str]]:
    return [{"name": n, "requirement": r, "description": d} for n, (r, d) in FAULTS.items()]
