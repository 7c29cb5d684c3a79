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
    "century_sign_plus_rejected": ("IDN-002", "AddLoans rejects a valid borrower code with the 1800s sign + as D04 (the extract accepts it)"),
    "century_sign_ignored": ("IDN-007", "the extract finds a person's loans also under a code differing only in the century sign"),
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
    "batch_reference_101_chars": ("RPT-001", "a BatchReference of 101 characters is accepted (the limit checked one too high)"),
    "accepted_answer_with_state": ("RPT-002", "the 202 answer of a submission carries batchStatus, a processing result"),
    "get_loan_first_borrower_only": ("RPT-003", "GetLoan returns only the first of a loan's borrowers"),
    "transfer_keeps_old_owner": ("RPT-007", "a transferred loan is re-activated but stays with the old lender"),
    "transfer_ignores_borrower": ("RPT-008", "a transfer report is accepted although its first borrower differs from the stored loan's"),
    "guarantee_purpose_on_other_types": ("RPT-010", "a loan of another type with purpose GuaranteeReceivableForStudentLoan is accepted"),
    "second_type_object_accepted": ("RPT-011", "a loan carrying its own type object and a foreign one is accepted"),
    "borrowers_count_unchecked_on_update": ("RPT-012", "UpdateLoans does not check borrowersCount (AddLoans does)"),
    "leasing_rejected": ("RPT-013", "a leasing contract is rejected with D22 although it carries leasingContract"),
    "business_borrower_rejected": ("RPT-014", "a stage-2 loan (OtherThanConsumerCredit, borrower businessId) is rejected with D05"),
    "update_keeps_old_data": ("RPT-015", "an UpdateLoans NewReport is accepted but the stored loan keeps its old data"),
    "unknown_loan_accepted_by_delays": ("RPT-016", "DelayedRepayments naming an unknown loan number is accepted (the others answer D11)"),
    "error_correction_ignored": ("RPT-017", "an UpdateLoans ErrorCorrection is accepted but the stored loan keeps its old data"),
    "cancellation_by_termination_ignored": ("RPT-018", "a Cancellation report to TerminateLoans is accepted but the loan stays as it was"),
    "end_date_correction_ignored": ("RPT-020", "an ErrorCorrection to TerminateLoans keeps the old end date of an ended loan"),
    "cancelled_loan_updatable": ("RPT-021", "UpdateLoans changes a cancelled loan instead of rejecting it with D13"),
    "balance_only_repayment_ignored": ("RPT-023", "a balance-only repayment is accepted but the balance is not set"),
    "running_balance_ignored": ("RPT-024", "a running-account balance report is accepted but GetLoan keeps the old balance"),
    "balance_date_before_contract_accepted": ("RPT-025", "a running-account balanceDate before the contract date is accepted (paymentDate is checked)"),
    "repayment_on_contract_date_rejected": ("RPT-025", "a payment or balance dated on the contract date is rejected with D35 (the boundary checked one day late)"),
    "second_delayed_amount_dropped": ("RPT-026", "only the first delayed instalment of a report is recorded"),
    "amounts_without_delay_accepted": ("RPT-029", "delayedAmounts with isDelay false are accepted"),
    "delay_not_cleared": ("RPT-030", "isDelay false without amounts leaves the earlier delayed amounts on the loan"),
    "foreclosure_date_dropped": ("RPT-031", "an acceleration is recorded without its foreclosureDate"),
    "end_date_shifted": ("RPT-032", "a termination stores the end date one day late"),
    "end_date_day_before_contract_accepted": ("RPT-033", "an end date one day before the contract date is accepted (off by one)"),
    "contract_date_tomorrow_accepted": ("RPT-035", "a contract date of tomorrow is accepted (only later dates are refused)"),
    "second_deferment_period_unchecked": ("RPT-036", "only the first deferment period is checked for its end before its start"),
    "negative_amount_accepted": ("RPT-037", "a negative amountIssued is accepted"),
    "zero_credit_limit_rejected": ("RPT-038", "a running-account loan with creditLimit 0 is rejected"),
    "unknown_loan_number_400": ("RPT-039", "GetLoan of a loan number nobody reported is answered 400 instead of 404"),
    "empty_repayments_batch_accepted": ("RPT-040", "an empty Repayments batch is accepted (the other operations answer D01)"),
    # batches
    "batch_stuck_processing": ("BAT-010", "batches are stored but never processed: GetBatchStatus stays Processing"),
    "no_partial_success": ("BAT-003", "a batch with any rejected report is rejected as a whole (FinishedFailed)"),
    "batch_reference_not_idempotent": ("BAT-008", "a resubmitted batch reference with the same content is processed again"),
    "results_shown_while_processing": ("BAT-001", "GetBatchStatus shows every report Accepted while the batch is still Processing"),
    "success_reported_as_partial": ("BAT-002", "a batch of two or more reports, all accepted, ends FinishedPartialSuccess"),
    "all_rejected_reported_as_partial": ("BAT-004", "a batch of two or more reports, all rejected, ends FinishedPartialSuccess"),
    "report_count_counts_accepted": ("BAT-005", "reportCount counts only the accepted reports"),
    "later_errors_without_field_name": ("BAT-006", "the second and later errors of a rejected report have an empty fieldName"),
    "unknown_batch_d11": ("BAT-007", "GetBatchStatus of a reference nobody submitted is answered 404 with D11 instead of D60"),
    "reused_reference_answered_202": ("BAT-009", "a batch reference reused with other content is answered 202 and ignored"),
    "batch_limit_off_by_one": ("BAT-012", "a batch of 10 001 reports is accepted (the limit checked one too high)"),
    "large_batch_truncated": ("BAT-013", "reports after the 500th of a batch are rejected with H50"),
    # extract
    "skip_extract_permission": ("EXT-004", "a lender without the data permission gets extracts"),
    "extract_wrong_summary": ("EXT-006", "creditInformationSummary.loanContractsCount is one more than the listed loans"),
    "extract_includes_ended_loans": ("EXT-007", "ended loans appear on the extract"),
    "cancelled_loan_on_extract": ("EXT-008", "cancelled loans appear on the extract"),
    "extract_no_ban": ("EXT-009", "a voluntary ban in effect is left off the extract"),
    "extract_income_11_months": ("EXT-010", "the extract holds only 11 months of income data"),
    "deceased_as_not_found": ("EXT-012", "a deceased person gives the PersonNotFound outcome"),
    "no_extract_log": ("EXT-015", "extract requests are not logged (GetExtractLog stays empty)"),
    "empty_purpose_list_accepted": ("EXT-001", "an empty creditRegisterExtractPurpose list is accepted (the minimum of one is not checked)"),
    "second_purpose_rejected": ("EXT-002", "a request with a second purpose is rejected: only one purpose is accepted"),
    "non_consumer_purpose_rejected": ("EXT-003", "a purpose for a credit other than a consumer credit is rejected"),
    "extract_first_lender_only": ("EXT-005", "the extract lists the loans of the first lender only, not those of a second lender"),
    "not_found_as_error": ("EXT-011", "a person not found is answered 400 (as an invalid code) instead of the billable PersonNotFound extract"),
    "not_in_use_as_error": ("EXT-013", "a code not in use is answered 400 (as an invalid code) instead of the IdentifierNotInUse extract"),
    "extract_reference_per_person": ("EXT-014", "the extractReference is derived from the person: a second extract repeats it"),
    "extract_second_delayed_amount_dropped": ("EXT-016", "the extract shows the first delayed instalment of a loan only"),
    "contract_date_shown_in_debt_arrangement": ("EXT-017", "the contract date is shown while a debt arrangement is in effect (only restructuring hides it)"),
    "sums_in_first_currency": ("EXT-018", "repayments and leasing instalments of every currency are summed under the first currency"),
    "deferment_periods_dropped": ("EXT-019", "deferment periods are left off the extract"),
    "guarantees_not_listed": ("EXT-020", "loans where the person is a guarantor are neither listed nor counted"),
    "lender_of_first_loan": ("EXT-021", "every loan names the official name of the lender of the extract's first loan"),
    "balance_rounded": ("EXT-022", "balances on the extract are rounded to whole euros, not shown as last reported"),
    "extract_log_of_everyone": ("EXT-023", "the extract log shows the requests of every lender"),
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
    "delete_served_on_voluntary_ban": ("ENV-001", "a DELETE to the voluntary-ban API is served like a POST"),
    "target_environment_optional_authorities": ("ENV-002", "the authorities' API accepts a request without targetEnvironment"),
    "production_accepted_on_voluntary_ban": ("ENV-003", "the voluntary-ban API accepts targetEnvironment Production on the test register"),
    "owner_optional_get_batch_status": ("ENV-004", "GetBatchStatus without owner is answered for the certificate's organisation"),
    "content_type_unchecked_extract_log": ("ENV-006", "GetExtractLog accepts a body of any content type"),
    "size_limit_on_content_length_only": ("ENV-008", "a body over the limit sent chunked (no Content-Length) is read whole and processed"),
    "deep_nesting_500_reporting": ("ENV-009", "deeply nested JSON to the reporting API is answered 500"),
    "casing_top_level_only": ("ENV-011", "member names are matched case-insensitively at the top level only"),
    "enum_case_folded_loan_type": ("ENV-012", "loanType is matched case-insensitively (lumpsumloan is accepted)"),
    "finnish_date_accepted": ("ENV-013", "a contractDate in the Finnish format d.M.yyyy is accepted"),
    "quote_in_loan_number_500": ("ENV-015", "a single quote in a GetLoan loan number is answered 500 (a query built as text)"),
    "unknown_path_gateway_404": ("ENV-016", "an unknown operation path is answered by a gateway's own 404 page (text/html)"),
    "batch_status_without_received_time": ("ENV-023", "GetBatchStatus leaves out the modelled member receivedTimeUtc"),
    "living_person_as_deceased": ("ENV-023", "a living person's extract has the model's outcome literal for the deceased, PersonDeceased"),
    "method_not_allowed_code_h04": ("ENV-001", "a method other than POST is answered 405 with the unknown path's code H04, not H05"),
    "extract_dates_as_timestamps": ("ENV-024", "contract dates on the extract are midnight timestamps, not the profile's yyyy-MM-dd"),
    # security
    "ignore_client_cert": ("SEC-001", "connections without a client certificate are accepted as lender-a"),
    "skip_role_check": ("SEC-004", "a certificate of any role may use any API"),
    "skip_owner_type_check": ("SEC-005", "an owner id type contradicting the certificate is accepted"),
    "skip_owner_id_check": ("SEC-006", "an owner other than the certificate's organisation is accepted"),
    "leak_other_lenders_loans": ("SEC-007", "GetLoan returns another lender's loan"),
    "allow_update_other_lender": ("SEC-008", "a lender may change another lender's loan"),
    "batch_status_other_lender": ("SEC-009", "GetBatchStatus shows another lender's batch"),
    "trust_foreign_ca": ("SEC-002", "client certificates of a foreign CA are trusted as well"),
    "accept_expired_certificate": ("SEC-003", "an expired client certificate is accepted (the validity period is not checked)"),
    "allow_tls_1_0": ("SEC-010", "TLS 1.0 and 1.1 connections are accepted"),
    "internals_in_bad_json_answer": ("SEC-011", "a body that is not JSON is answered 400 with the JSON decoder's exception text"),
    # authorities and credit information companies
    "authority_sees_all_credits": ("AUT-006", "a consumer-credit-only authority receives non-consumer loans"),
    "authority_role_unchecked_get_distribution": ("AUT-001", "GetDistribution accepts a certificate of any role"),
    "order_answered_200": ("AUT-002", "an accepted order is answered 200, not 202"),
    "legal_basis_blank_accepted": ("AUT-003", "a legal basis of spaces only is accepted"),
    "order_status_finished_at_once": ("AUT-004", "GetOrderStatus shows Finished while the order is still processed"),
    "distribution_first_subject_only": ("AUT-005", "the distribution holds the first subject of an order only"),
    "order_visible_to_other_authority": ("AUT-007", "an order is visible to every authority"),
    "distribution_before_finished": ("AUT-008", "the distribution of an order still Processing is given, empty"),
    "second_subject_not_validated": ("AUT-009", "only the first subject's identity code of an order is validated"),
    "ban_without_consent": ("BAN-002", "a ban is disclosed to credit information companies without consent"),
    "ban_changes_role_unchecked": ("BAN-001", "GetVoluntaryBanChanges accepts a certificate of any role"),
    "ban_validity_dropped": ("BAN-003", "a disclosed ban leaves out its validity (startDate, endDate)"),
    "no_consent_reveals_ban": ("BAN-004", "without consent the answer still tells a ban exists (consentRequired, only when there is one)"),
    "ban_feed_ignores_consent": ("BAN-005", "the change feed lists persons who did not consent"),
    "ban_hetu_not_validated": ("BAN-006", "GetVoluntaryBan does not validate the person's identity code"),
    # service levels under load (load_faults.py): only a load run shows them
    "slow_extract": ("PRF-001", "every extract is answered 1.5 s late (right content)"),
    "slow_batch_final": ("PRF-002", "GetBatchStatus shows a batch as processing until 17 s after it was received"),
    "server_error_under_load": ("PRF-003", "while more than 6 requests arrive per second, every fifth is answered 500"),
    "batch_lost_under_load": ("PRF-004", "every third AddLoans batch is answered 202 and never stored"),
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
