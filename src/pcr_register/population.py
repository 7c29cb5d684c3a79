"""The register's deterministic test population (population.json, interfaces.md §7).

Every identity code is artificial (individual number 900-999, docs/register-facts.md#personal-identity-code-hetu) and valid. The same seed gives
the same codes, statuses, bans and amounts; only the dates that must be relative to today (income months,
ban and death dates) move with ``today``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .identifiers import CENTURY_OF_SIGN, CENTURY_SIGNS, hetu

BAN_REASONS = ("RiskOfIdentityTheft", "ControlOfPersonalFinances", "Other")  # docs/register-facts.md#authorities-and-cics

# Share of each century sign among generated persons. The 1800s sign '+' is rare (and mostly deceased);
# the new 2023 signs (docs/register-facts.md#personal-identity-code-hetu) are all present so that registers are tested against them.
_SIGN_WEIGHTS: dict[str, int] = {
    "+": 1, "-": 34, "Y": 5, "X": 5, "W": 5, "V": 5, "U": 5,
    "A": 25, "B": 3, "C": 3, "D": 3, "E": 3, "F": 3,
}

# Fixed (not relative to today) so that statuses depend on the seed only.
_ADULT_BORN_BEFORE = date(2008, 1, 1)


@dataclass(frozen=True)
class PopulationProfile:
    """Shares of the population (of ``persons``) with each property."""

    income: float = 0.70
    deceased: float = 0.05
    not_in_use: float = 0.04
    ban_in_effect: float = 0.08  # half of them consented to disclosure to credit information companies
    consent_without_ban: float = 0.03
    century_twin_pairs: int = 3
    unknown: int = 20  # valid codes unknown to the population register (E20)


@dataclass
class _Person:
    code: str
    digits: str
    sign: str
    birth: date
    status: str = "active"
    date_of_death: date | None = None
    income: bool = False
    ban: dict[str, Any] | None = None
    ban_consent: bool = False
    ban_changed: str | None = None


def _birth_date(rng: random.Random, sign: str) -> date:
    century = CENTURY_OF_SIGN[sign]
    if century == 1800:
        year = rng.randrange(1880, 1900)
    elif century == 1900:
        year = rng.randrange(1935, 2000)
    else:  # mostly adults; about one in ten a minor
        year = rng.randrange(2000, 2008) if rng.random() < 0.9 else rng.randrange(2008, 2015)
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _new_person(rng: random.Random, sign: str, used_digits: set[str]) -> _Person:
    while True:
        birth = _birth_date(rng, sign)
        code = hetu(birth, rng.randrange(900, 1000), sign)
        digits = code[:6] + code[7:10]
        if digits not in used_digits:  # no accidental century twins: the tag must be exact
            used_digits.add(digits)
            return _Person(code, digits, sign, birth)


def _months_before(today: date, count: int = 12) -> list[tuple[int, int]]:
    """The ``count`` calendar months before today's month, oldest first."""
    current = today.year * 12 + today.month - 1
    return [((current - i) // 12, (current - i) % 12 + 1) for i in range(count, 0, -1)]


def _income(rng: random.Random, months: list[tuple[int, int]]) -> list[dict[str, Any]]:
    kind = rng.random()
    wages = 0.0 if kind < 0.1 else rng.uniform(1800, 6500)  # one in ten lives on benefits only
    if kind < 0.1:
        benefits = rng.uniform(900, 2500)
    elif kind < 0.2:
        benefits = rng.uniform(200, 1200)
    else:
        benefits = 0.0
    wage_tax, benefit_tax = rng.uniform(0.18, 0.38), rng.uniform(0.1, 0.3)
    rows = []
    for year, month in months:
        gross = wages * rng.uniform(0.95, 1.08)
        bgross = benefits * rng.uniform(0.98, 1.02)
        rows.append({
            "year": year,
            "month": month,
            "wagesGrossAmount": round(gross, 2),
            "wagesNetAmount": round(gross * (1 - wage_tax), 2),
            "benefitsGrossAmount": round(bgross, 2),
            "benefitsNetAmount": round(bgross * (1 - benefit_tax), 2),
        })
    return rows


def _timestamp(rng: random.Random, day: date) -> str:
    s = rng.randrange(7 * 3600, 22 * 3600)
    return f"{day.isoformat()}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"


def generate_population(
    persons: int = 500,
    seed: int = 1,
    today: date | None = None,
    profile: PopulationProfile = PopulationProfile(),
) -> dict[str, Any]:
    """The population.json document: ``{"persons": [...], "unknown": [...]}``."""
    today = today or date.today()
    min_persons = len(CENTURY_SIGNS) + 2 * profile.century_twin_pairs + 10
    if persons < min_persons:
        raise ValueError(f"at least {min_persons} persons are needed")
    rng = random.Random(seed)
    used: set[str] = set()
    n_base = persons - profile.century_twin_pairs
    signs = list(CENTURY_SIGNS) + rng.choices(
        list(_SIGN_WEIGHTS), weights=list(_SIGN_WEIGHTS.values()), k=n_base - len(CENTURY_SIGNS)
    )
    people = [_new_person(rng, sign, used) for sign in signs]

    # The first person of each sign stays active so that every sign can be reported on.
    reserved = set(range(len(CENTURY_SIGNS)))
    n_dead = round(profile.deceased * persons)
    n_not_in_use = round(profile.not_in_use * persons)
    others = [i for i in range(n_base) if i not in reserved]
    rng.shuffle(others)
    # Persons born in the 1800s are deceased first; then a random choice.
    others.sort(key=lambda i: people[i].sign != "+")
    for i in others[:n_dead]:
        p = people[i]
        p.status = "deceased"
        days_lived = rng.randrange(60 * 365, 100 * 365) if p.sign == "+" else None
        days_ago = rng.randrange(30, 5 * 365)
        p.date_of_death = p.birth + timedelta(days=days_lived) if days_lived else today - timedelta(days=days_ago)
    for i in others[n_dead:n_dead + n_not_in_use]:
        people[i].status = "not-in-use"

    active = [i for i in range(n_base) if people[i].status == "active"]
    # Century twins (docs/register-facts.md#personal-identity-code-hetu): same DDMMYYZZZ, other sign of the same century, both active with income.
    twin_bases = rng.sample(
        [i for i in active if people[i].sign != "+" and people[i].birth < _ADULT_BORN_BEFORE],
        profile.century_twin_pairs,
    )
    twins: list[_Person] = []
    for i in twin_bases:
        base = people[i]
        family = [s for s in CENTURY_SIGNS if CENTURY_OF_SIGN[s] == CENTURY_OF_SIGN[base.sign] and s != base.sign]
        sign = rng.choice(family)
        code = hetu(base.birth, int(base.digits[6:]), sign)
        twins.append(_Person(code, base.digits, sign, base.birth, income=True))
        base.income = True
    twin_set = set(twin_bases)

    # Income and bans go to adults born in 1900-2007 only (minors and the 1800s-born have no income).
    plain_active = [
        i for i in active
        if i not in twin_set and people[i].sign != "+" and people[i].birth < _ADULT_BORN_BEFORE
    ]
    n_income = max(0, round(profile.income * persons) - 2 * len(twins))
    for i in rng.sample(plain_active, min(n_income, len(plain_active))):
        people[i].income = True

    n_ban = round(profile.ban_in_effect * persons)
    n_consent = round(profile.consent_without_ban * persons)
    chosen = rng.sample(plain_active, min(n_ban + n_consent, len(plain_active)))
    for k, i in enumerate(chosen[:n_ban]):
        p = people[i]
        start = today - timedelta(days=rng.randrange(10, 900))
        end = None if rng.random() < 0.6 else today + timedelta(days=rng.randrange(30, 700))
        p.ban = {"isInEffect": True, "reason": rng.choice(BAN_REASONS), "startDate": start.isoformat(),
                 "endDate": end.isoformat() if end else None}
        p.ban_consent = k % 2 == 0
        p.ban_changed = _timestamp(rng, start)
    for k, i in enumerate(chosen[n_ban:]):
        p = people[i]
        p.ban_consent = True
        if k % 3 == 0:  # a lifted (expired) ban: consent, but no ban in effect
            start = today - timedelta(days=rng.randrange(400, 900))
            end = today - timedelta(days=rng.randrange(5, 300))
            p.ban = {"isInEffect": False, "reason": rng.choice(BAN_REASONS), "startDate": start.isoformat(),
                     "endDate": end.isoformat()}
            p.ban_changed = _timestamp(rng, end)

    months = _months_before(today)
    everyone = people + twins
    out = []
    for p in everyone:
        out.append({
            "idCode": p.code,
            "status": p.status,
            "dateOfDeath": p.date_of_death.isoformat() if p.date_of_death else None,
            "income": _income(rng, months) if p.income else [],
            "voluntaryBan": p.ban,
            "banConsent": p.ban_consent,
            "banChangedTimeUtc": p.ban_changed,
        })

    unknown_signs = rng.choices(list(_SIGN_WEIGHTS), weights=list(_SIGN_WEIGHTS.values()), k=profile.unknown)
    unknown = [_new_person(rng, sign, used).code for sign in unknown_signs]
    return {"persons": out, "unknown": unknown}


def pool_tags(person: dict[str, Any], twin_digits: set[str]) -> list[str]:
    """Pool-file tags of one population.json person (interfaces.md §7)."""
    tags = []
    if person["income"]:
        tags.append("income")
    elif person["status"] == "active":
        tags.append("no-income")
    if person["status"] == "deceased":
        tags.append("deceased")
    if person["status"] == "not-in-use":
        tags.append("not-in-use")
    ban = person["voluntaryBan"]
    if ban and ban["isInEffect"]:
        tags.append("voluntary-ban")
    if person["banConsent"]:
        tags.append("ban-consent")
    code = person["idCode"]
    if code[:6] + code[7:10] in twin_digits:
        tags.append("century-twin")
    return tags


def twin_digit_set(persons: list[dict[str, Any]]) -> set[str]:
    """DDMMYYZZZ values shared by more than one person."""
    seen: set[str] = set()
    twins: set[str] = set()
    for p in persons:
        digits = p["idCode"][:6] + p["idCode"][7:10]
        (twins if digits in seen else seen).add(digits)
    return twins
