"""Finnish personal identity codes (hetu) and Business IDs (Y-tunnus): check, build, break.

Rules from docs/register-facts.md#identity-codes: hetu `DDMMYYCZZZQ`, Q = `0123456789ABCDEFHJKLMNPRSTUVWXY`[DDMMYYZZZ mod 31];
Business ID `NNNNNNN-C` with weights 7,9,10,5,8,4,2 (r = sum mod 11; r=0 -> 0; r=1 -> no valid digit;
else 11-r). The suites only ever generate artificial codes (individual number 900-999).
"""

from __future__ import annotations

import datetime as dt
import random
import re

CHECK_ALPHABET = "0123456789ABCDEFHJKLMNPRSTUVWXY"

# Century sign -> century base. The 2023 decree added Y X W V U (1900s) and B C D E F (2000s); the sign is
# significant (IDN-007), so every sign maps to exactly one century.
CENTURY_SIGNS: dict[str, int] = {
    "+": 1800,
    "-": 1900, "Y": 1900, "X": 1900, "W": 1900, "V": 1900, "U": 1900,
    "A": 2000, "B": 2000, "C": 2000, "D": 2000, "E": 2000, "F": 2000,
}

_HETU_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})([-+A-FU-Y])(\d{3})([0-9A-Y])$")
_BUSINESS_ID_RE = re.compile(r"^(\d{7})-(\d)$")
_BUSINESS_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)

ARTIFICIAL_INDIVIDUALS = range(900, 1000)


def hetu_check_character(ddmmyy: str, individual: str | int) -> str:
    """The control character of DDMMYY + ZZZ (the century sign does not take part)."""
    digits = f"{ddmmyy}{int(individual):03d}" if not isinstance(individual, str) else f"{ddmmyy}{individual}"
    if not re.fullmatch(r"\d{9}", digits):
        raise ValueError(f"hetu_check_character: need 6 date digits and 3 individual digits, got {digits!r}")
    return CHECK_ALPHABET[int(digits) % 31]


def hetu(birth_date: dt.date, individual: int, century_sign: str | None = None) -> str:
    """A checksum-valid hetu. `century_sign` defaults to `-` / `A` / `+` by century; it must fit the year."""
    if not 2 <= individual <= 999:
        raise ValueError(f"hetu: individual number must be 002..999, got {individual}")
    century = birth_date.year // 100 * 100
    if century_sign is None:
        century_sign = {1800: "+", 1900: "-", 2000: "A"}.get(century, "")
    if CENTURY_SIGNS.get(century_sign) != century:
        raise ValueError(f"hetu: century sign {century_sign!r} does not fit year {birth_date.year}; "
                         f"use one of {[s for s, c in CENTURY_SIGNS.items() if c == century]}")
    ddmmyy = birth_date.strftime("%d%m") + f"{birth_date.year % 100:02d}"
    return f"{ddmmyy}{century_sign}{individual:03d}{hetu_check_character(ddmmyy, individual)}"


def hetu_birth_date(code: str) -> dt.date | None:
    """The birth date a hetu encodes, or None when the layout or date is invalid."""
    m = _HETU_RE.match(code)
    if not m:
        return None
    dd, mm, yy, sign = m.group(1), m.group(2), m.group(3), m.group(4)
    try:
        return dt.date(CENTURY_SIGNS[sign] + int(yy), int(mm), int(dd))
    except ValueError:
        return None


def is_valid_hetu(code: str) -> bool:
    """Layout, real calendar date, individual number 002-999 and check character all valid."""
    if not isinstance(code, str):
        return False
    m = _HETU_RE.match(code)
    if not m or hetu_birth_date(code) is None:
        return False
    individual = m.group(5)
    if int(individual) < 2:
        return False
    return m.group(6) == hetu_check_character(code[:6], individual)


def hetu_individual(code: str) -> int | None:
    """The individual number (the three digits after the century sign) of a code in hetu layout, else None;
    900-999 is the artificial range (CLI-012)."""
    m = _HETU_RE.match(code) if isinstance(code, str) else None
    return int(m.group(5)) if m else None


def with_wrong_check_character(code: str) -> str:
    """The same code with another (wrong) control character: D04 / IDN-001."""
    right = hetu_check_character(code[:6], code[7:10])
    wrong = CHECK_ALPHABET[(CHECK_ALPHABET.index(right) + 1) % len(CHECK_ALPHABET)]
    return code[:10] + wrong


def with_century_sign(code: str, sign: str) -> str:
    """The same digits with another century sign of the same century (a "century twin", IDN-007)."""
    if CENTURY_SIGNS.get(sign) != CENTURY_SIGNS.get(code[6]):
        raise ValueError(f"with_century_sign: {sign!r} is not a sign of the same century as {code!r}")
    return code[:6] + sign + code[7:]


def business_id_check_digit(seven_digits: str) -> int | None:
    """The check digit of a 7-digit Business ID body, or None when no digit is valid (r = 1)."""
    if not re.fullmatch(r"\d{7}", seven_digits):
        raise ValueError(f"business_id: need exactly 7 digits, got {seven_digits!r}")
    r = sum(int(d) * w for d, w in zip(seven_digits, _BUSINESS_ID_WEIGHTS, strict=True)) % 11
    if r == 0:
        return 0
    if r == 1:
        return None
    return 11 - r


def business_id(seven_digits: str | int) -> str:
    """A valid Business ID `NNNNNNN-C`; ValueError for a body that has no valid check digit."""
    body = f"{int(seven_digits):07d}" if isinstance(seven_digits, int) else seven_digits
    digit = business_id_check_digit(body)
    if digit is None:
        raise ValueError(f"business_id: {body} has remainder 1, so no check digit is valid; pick another body")
    return f"{body}-{digit}"


def is_valid_business_id(code: str) -> bool:
    if not isinstance(code, str):
        return False
    m = _BUSINESS_ID_RE.match(code)
    if not m:
        return False
    digit = business_id_check_digit(m.group(1))
    return digit is not None and digit == int(m.group(2))


def business_id_with_wrong_check_digit(code: str) -> str:
    """The same Business ID body with a wrong check digit: D05 / IDN-003."""
    return f"{code[:7]}-{(int(code[8]) + 1) % 10}"


# ---- generators ---------------------------------------------------------------------------------------


def artificial_hetu(rng: random.Random | None = None, *, century_sign: str | None = None,
                    min_age: int = 20, max_age: int = 70, today: dt.date | None = None) -> str:
    """A random checksum-valid artificial hetu (individual 900-999) of an adult."""
    rng = rng or random.Random()
    today = today or dt.date.today()
    while True:
        birth = today - dt.timedelta(days=rng.randint(min_age * 366, max_age * 365))
        sign = century_sign
        if sign is not None and CENTURY_SIGNS.get(sign) != birth.year // 100 * 100:
            continue  # the requested sign needs another century; draw again
        return hetu(birth, rng.choice(ARTIFICIAL_INDIVIDUALS), sign)


def artificial_hetus_all_signs(rng: random.Random | None = None) -> list[str]:
    """One artificial hetu per century sign (IDN-002), birth dates chosen inside each sign's century."""
    rng = rng or random.Random()
    out = []
    for sign, century in CENTURY_SIGNS.items():
        year = century + (rng.randint(50, 99) if century == 1800 else rng.randint(0, 99))
        if century == 2000:
            year = century + rng.randint(0, 5)
        birth = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        out.append(hetu(birth, rng.choice(ARTIFICIAL_INDIVIDUALS), sign))
    return out


def invalid_hetu_variants(code: str) -> dict[str, str]:
    """Named invalid variants of a valid hetu (IDN-001): each breaks exactly one rule."""
    return {
        "wrong_check_character": with_wrong_check_character(code),
        "lowercase_check": code[:10] + code[10].lower() if code[10].isalpha() else code[:10] + "g",
        "bad_century_sign": code[:6] + "G" + code[7:],
        "too_short": code[:-1],
        "too_long": code + "0",
        "impossible_date": _rechecked("3102" + code[4:6], code[6], code[7:10]),
        "individual_000": _rechecked(code[:6], code[6], "000"),
        "letters_in_date": "AB" + code[2:],
        "empty": "",
        "spaces": f" {code} ",
    }


def invalid_business_id_variants(code: str) -> dict[str, str]:
    """Named invalid variants of a valid Business ID (IDN-003)."""
    return {
        "wrong_check_digit": business_id_with_wrong_check_digit(code),
        "missing_dash": code.replace("-", ""),
        "too_short": code[1:],
        "letters": "ABCDEFG-" + code[8],
        "empty": "",
    }


def _rechecked(ddmmyy: str, sign: str, individual: str) -> str:
    """A code with a correct check character but otherwise invalid digits (date or individual number)."""
    return f"{ddmmyy}{sign}{individual}{hetu_check_character(ddmmyy, individual)}"
