"""Seeded faults that loosen the envelope and schema checks of app.py (docs/concepts.md#seeded-faults).

Each is the kind of leniency a real implementation slips into (a check left out on one API family or
operation, a "helpful" normalisation before validation) and breaks exactly the requirement its entry in
faults.FAULTS names. Nothing here runs unless its fault switch is on.
"""

from __future__ import annotations

import re
from typing import Any

from pcr_register.faults import Faults

_FINNISH_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
LOAN_TYPES = ("LumpSumLoan", "RunningAccountLoan", "Leasing", "GuaranteeReceivable")


def before_validation(faults: Faults, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body as a lenient implementation would rewrite it before the schema sees it."""
    loans = body.get("loans") if isinstance(body.get("loans"), list) else []
    for loan in loans:
        if not isinstance(loan, dict):
            continue
        kind = loan.get("loanType")
        if faults.on("enum_case_folded_loan_type") and isinstance(kind, str):  # breaks ENV-012
            loan["loanType"] = next((t for t in LOAN_TYPES if t.lower() == kind.lower()), kind)
        date = loan.get("contractDate")
        if faults.on("finnish_date_accepted") and isinstance(date, str):  # breaks ENV-013
            m = _FINNISH_DATE.fullmatch(date)
            if m:
                loan["contractDate"] = f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return body


def ignored_errors(faults: Faults, operation: str, family: str, body: dict[str, Any],
                   errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """The schema errors left after the checks a faulty register forgets."""
    def kept(error: dict[str, str]) -> bool:
        field = error.get("fieldName", "")
        if field == "/targetEnvironment" and "targetEnvironment" not in body and family == "authorities":
            return not faults.on("target_environment_optional_authorities")  # breaks ENV-002
        if field == "/owner" and "owner" not in body and operation == "GetBatchStatus":
            return not faults.on("owner_optional_get_batch_status")  # breaks ENV-004
        if field.endswith("/creditRegisterExtractPurpose") and "non-empty" in error.get("errorDescription", ""):
            return not faults.on("empty_purpose_list_accepted")  # breaks EXT-001
        return True
    return [e for e in errors if kept(e)]


def environment_checked(faults: Faults, family: str) -> bool:
    """Whether targetEnvironment is compared with the register's environment (ENV-003) for this family."""
    return not (family == "voluntary-ban" and faults.on("production_accepted_on_voluntary_ban"))


def content_type_checked(faults: Faults, operation: str) -> bool:
    """Whether the content type is checked (ENV-006) for this operation."""
    return not (operation == "GetExtractLog" and faults.on("content_type_unchecked_extract_log"))


def method_allowed(faults: Faults, family: str, method: str) -> bool:
    """Whether a method other than POST is served like one (breaks ENV-001)."""
    return method == "DELETE" and family == "voluntary-ban" and faults.on("delete_served_on_voluntary_ban")


def role_check_skipped(faults: Faults, operation: str) -> bool:
    """Whether the certificate's role goes unchecked on this one operation (a route wired without the check)."""
    return (operation == "GetDistribution" and faults.on("authority_role_unchecked_get_distribution")) \
        or (operation == "GetVoluntaryBanChanges" and faults.on("ban_changes_role_unchecked"))  # AUT-001, BAN-001
