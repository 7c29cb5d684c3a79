"""The register's own identifier rules: Finnish personal identity code (hetu) and Business ID (Y-tunnus).

Deliberately independent of ``pcr_conformance.identifiers`` (ARCHITECTURE.md: the register and the harness
meet only at specs/ and HTTP), so a bug in one is caught by the other.

Facts: docs/register-facts.md#personal-identity-code-hetu (hetu) and docs/register-facts.md#business-id (Business ID).
"""

from __future__ import annotations

import re
from datetime import date

# docs/register-facts.md#personal-identity-code-hetu: check character = DDMMYYZZZ mod 31, indexed into this alphabet.
HETU_CHECK_ALPHABET = "0123456789ABCDEFHJKLMNPRSTUVWXY"

# docs/register-facts.md#personal-identity-code-hetu: century signs since the 2023 decree.
CENTURY_OF_SIGN: dict[str, int] = {
    "+": 1800,
    "-": 1900, "Y": 1900, "X": 1900, "W": 1900, "V": 1900, "U": 1900,
    "A": 2000, "B": 2000, "C": 2000, "D": 2000, "E": 2000, "F": 2000,
}
CENTURY_SIGNS: tuple[str, ...] = tuple(CENTURY_OF_SIGN)

# Individual numbers 900-999 are for temporary/artificial codes; 002-899 are issued to real people.
ARTIFICIAL_INDIVIDUAL_NUMBERS = range(900, 1000)

_HETU_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})([-+YXWVUABCDEF])(\d{3})([0-9A-Y])$")
_BUSINESS_ID_RE = re.compile(r"^(\d{7})-(\d)$")
_BUSINESS_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)  # IDN-003: the check digit's weights


def hetu_check_character(digits: str) -> str:
    """Check character for the nine digits DDMMYYZZZ (docs/register-facts.md#personal-identity-code-hetu)."""
    if len(digits) != 9 or not digits.isdigit():
        raise ValueError(f"expected nine digits DDMMYYZZZ, got {digits!r}")
    return HETU_CHECK_ALPHABET[int(digits) % 31]


def hetu(birth_date: date, individual: int, century_sign: str) -> str:
    """Build a personal identity code; the sign must belong to the birth date's century."""
    if CENTURY_OF_SIGN.get(century_sign) != birth_date.year // 100 * 100:
        raise ValueError(f"century sign {century_sign!r} does not fit {birth_date.isoformat()}")
    if not 2 <= individual <= 999:
        raise ValueError(f"individual number out of range: {individual}")
    digits = f"{birth_date:%d%m}{birth_date.year % 100:02d}{individual:03d}"
    return f"{digits[:6]}{century_sign}{digits[6:]}{hetu_check_character(digits)}"


def hetu_birth_date(code: str) -> date | None:
    """Birth date encoded in a well-formed code, or None when the format or the date is wrong."""
    m = _HETU_RE.match(code)
    if not m:
        return None
    day, month, yy, sign = int(m[1]), int(m[2]), int(m[3]), m[4]
    try:
        return date(CENTURY_OF_SIGN[sign] + yy, month, day)
    except ValueError:
        return None


def has_valid_hetu_layout(code: str) -> bool:
    """Everything but the check character: layout, known century sign, a real birth date and individual
    number 002-999. A code failing this is a synchronous 400 D04; a wrong check character alone is rejected
    per report (IDN-001)."""
    m = _HETU_RE.match(code)
    if not m or hetu_birth_date(code) is None:
        return False
    return int(m[5]) >= 2  # 000 and 001 are never issued


def is_valid_hetu(code: str) -> bool:
    """True for a well-formed code with the right check character (the register answers D04 otherwise, IDN-001).

    Every century sign of the 2023 decree is accepted (IDN-002); the sign is kept, never dropped (IDN-007).
    """
    if not has_valid_hetu_layout(code):
        return False
    return hetu_check_character(code[:6] + code[7:10]) == code[10]


def is_artificial_hetu(code: str) -> bool:
    """A valid code whose individual number is in the artificial range 900-999."""
    return is_valid_hetu(code) and int(code[7:10]) in ARTIFICIAL_INDIVIDUAL_NUMBERS


def business_id_check_digit(seven_digits: str) -> int | None:
    """Check digit of a Business ID (IDN-003), or None when the number cannot have one (remainder 1).

    docs/register-facts.md#business-id: weights 7,9,10,5,8,4,2; r = sum mod 11; r = 0 -> 0; r = 1 -> invalid; else 11 - r.
    """
    if len(seven_digits) != 7 or not seven_digits.isdigit():
        raise ValueError(f"expected seven digits, got {seven_digits!r}")
    r = sum(int(d) * w for d, w in zip(seven_digits, _BUSINESS_ID_WEIGHTS, strict=True)) % 11
    if r == 0:
        return 0
    if r == 1:
        return None
    return 11 - r


def business_id(seven_digits: str) -> str:
    """``NNNNNNN-C`` for seven digits; ValueError when the number has no valid check digit."""
    check = business_id_check_digit(seven_digits)
    if check is None:
        raise ValueError(f"{seven_digits} has no valid Business ID check digit (remainder 1)")
    return f"{seven_digits}-{check}"


def is_valid_business_id(code: str) -> bool:
    """True for ``NNNNNNN-C`` with the right check digit (the register answers D05 otherwise)."""
    m = _BUSINESS_ID_RE.match(code)
    return bool(m) and business_id_check_digit(m[1]) == int(m[2])
