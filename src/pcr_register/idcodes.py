"""Personal identity code (hetu) and Business ID (Y-tunnus) checks (domain.md §3)."""

from __future__ import annotations

import datetime as dt
import re

_HETU = re.compile(r"^(\d{2})(\d{2})(\d{2})([-+A-FU-Y])(\d{3})([0-9A-Y])$")
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_CENTURY = {"+": 1800, "-": 1900, "Y": 1900, "X": 1900, "W": 1900, "V": 1900, "U": 1900,
            "A": 2000, "B": 2000, "C": 2000, "D": 2000, "E": 2000, "F": 2000}
_BUSINESS_ID = re.compile(r"^(\d{7})-(\d)$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)


def has_valid_hetu_layout(code: str) -> bool:
    """Layout, a real birth date and individual number 002-999: everything but the check character."""
    m = _HETU.match(code)
    if not m:
        return False
    dd, mm, yy, sign, zzz, _q = m.groups()
    try:
        dt.date(_CENTURY[sign] + int(yy), int(mm), int(dd))
    except ValueError:
        return False
    return int(zzz) >= 2


def is_valid_hetu(code: str) -> bool:
    """Layout DDMMYYCZZZQ, a real birth date, individual number 002-999 and the mod-31 check character.

    Every century sign of the 2023 decree is accepted (IDN-002); the sign is kept, never dropped (IDN-007).
    """
    if not has_valid_hetu_layout(code):
        return False
    return _CHECK[int(code[:6] + code[7:10]) % 31] == code[10]


def is_valid_business_id(code: str) -> bool:
    """NNNNNNN-C with weights 7,9,10,5,8,4,2 mod 11 (remainder 1 is never issued)."""
    m = _BUSINESS_ID.match(code)
    if not m:
        return False
    r = sum(int(d) * w for d, w in zip(m.group(1), _WEIGHTS, strict=True)) % 11
    if r == 1:
        return False
    return int(m.group(2)) == (0 if r == 0 else 11 - r)
