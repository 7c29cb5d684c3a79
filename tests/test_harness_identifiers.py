"""Identifier rules of docs/register-facts.md#identity-codes against the published examples, and the generators built on them."""

import datetime as dt
import random

import pytest

from pcr_conformance import identifiers as ids

PUBLISHED_VALID_HETU = ["010594Y9032", "020594X903P", "030594W903B", "040594V9030", "050594U903M",
                        "010516B903X", "020516C903K", "030516D9037", "010501E9032", "020504A902E", "131052-308T"]


@pytest.mark.parametrize("code", PUBLISHED_VALID_HETU)
def test_published_hetu_examples_are_valid(code):
    assert ids.is_valid_hetu(code)
    assert ids.hetu_check_character(code[:6], code[7:10]) == code[10]


@pytest.mark.parametrize("code", PUBLISHED_VALID_HETU)
def test_wrong_check_character_is_invalid(code):
    wrong = ids.with_wrong_check_character(code)
    assert wrong[:10] == code[:10] and wrong != code
    assert not ids.is_valid_hetu(wrong)


def test_hetu_builds_the_published_examples():
    assert ids.hetu(dt.date(1994, 5, 1), 903, "Y") == "010594Y9032"
    assert ids.hetu(dt.date(2004, 5, 2), 902, "A") == "020504A902E"
    assert ids.hetu(dt.date(1952, 10, 13), 308) == "131052-308T"


def test_hetu_refuses_a_century_sign_of_another_century():
    with pytest.raises(ValueError, match="does not fit"):
        ids.hetu(dt.date(1994, 5, 1), 903, "A")


def test_invalid_layouts():
    for bad in ["", "010594Y903", "010594G9032", "320194Y9032", "010594Y000X", "010594y9032", None, 10594]:
        assert not ids.is_valid_hetu(bad)  # type: ignore[arg-type]


def test_every_century_sign_generates_valid_artificial_codes():
    codes = ids.artificial_hetus_all_signs(random.Random(7))
    assert sorted(c[6] for c in codes) == sorted(ids.CENTURY_SIGNS)
    for c in codes:
        assert ids.is_valid_hetu(c), c
        assert 900 <= int(c[7:10]) <= 999


def test_artificial_hetu_is_valid_and_artificial():
    rng = random.Random(1)
    for _ in range(200):
        c = ids.artificial_hetu(rng)
        assert ids.is_valid_hetu(c) and 900 <= int(c[7:10]) <= 999


def test_invalid_hetu_variants_are_all_invalid():
    for name, variant in ids.invalid_hetu_variants("010594Y9032").items():
        assert not ids.is_valid_hetu(variant), name


def test_century_twin_has_the_same_check_character():
    twin = ids.with_century_sign("010594Y9032", "-")
    assert twin == "010594-9032" and ids.is_valid_hetu(twin)


@pytest.mark.parametrize("code", ["0112038-9", "0111027-9", "0194099-3"])
def test_published_business_ids_are_valid(code):
    assert ids.is_valid_business_id(code)
    assert ids.business_id(code[:7]) == code


def test_business_id_invalid_examples():
    assert not ids.is_valid_business_id("1234567-8")
    assert not ids.is_valid_business_id(ids.business_id_with_wrong_check_digit("0112038-9"))
    for name, variant in ids.invalid_business_id_variants("0112038-9").items():
        assert not ids.is_valid_business_id(variant), name


def test_business_id_remainder_rules():
    # r = 0 gives check digit 0; r = 1 has no valid check digit.
    bodies = [f"{n:07d}" for n in range(1, 400)]
    zero = next(b for b in bodies if ids.business_id_check_digit(b) == 0)
    assert ids.business_id(zero).endswith("-0")
    none = next(b for b in bodies if ids.business_id_check_digit(b) is None)
    with pytest.raises(ValueError, match="remainder 1"):
        ids.business_id(none)
