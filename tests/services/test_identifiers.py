"""Tests for app.services.identifiers (Swedish identifiers)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.services.identifiers import (
    COUNTY_NAMES,
    InvalidIdentifier,
    PersonalNumber,
    format_org_number,
    is_region_org_number,
    luhn_check_digit,
    make_personal_number,
    normalise_org_number,
    parse_personal_number,
    validate_county_code,
    validate_hsa_id,
)

TODAY = date(2025, 6, 15)


# ----------------------------------------------------------------------------- helpers


def ten(birth: date, serial: int, sep: str = "-", coordination: bool = False) -> str:
    """10-digit form (YYMMDD<sep>NNNC) of a generated valid number."""
    full = make_personal_number(birth, serial, coordination)
    return f"{full[2:8]}{sep}{full[8:]}"


def with_check(body11: str) -> str:
    """Append a correct Luhn digit to an 11-digit YYYYMMDDNNN body (no date validation)."""
    return body11 + str(luhn_check_digit(body11[2:]))


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def assert_no_leak(exc: BaseException, raw: str) -> None:
    """No message in the exception chain reveals the input (or its digits)."""
    stripped = raw.strip()
    digits = re.sub(r"[^0-9]", "", raw)
    for e in exception_chain(exc):
        for text in (str(e), repr(e), *(str(a) for a in e.args)):
            # Our messages never contain three digits in a row, so no part of a number can leak.
            assert re.search(r"[0-9]{3}", text) is None, text
            if len(digits) >= 3:
                assert stripped not in text
                assert digits not in text


def expect_invalid(func: Callable[[str], object], raw: str) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as info:
        func(raw)
    assert_no_leak(info.value, raw)
    return info.value


def parse_at_today(raw: str) -> PersonalNumber:
    return parse_personal_number(raw, today=TODAY)


# -------------------------------------------------------------------------------- Luhn


@pytest.mark.parametrize(
    ("nine", "check"),
    [
        ("121212121", 2),
        ("811218987", 6),
        ("232100001", 6),
        ("212000014", 2),
        ("202100548", 9),
        ("000000000", 0),
    ],
)
def test_luhn_check_digit_known_values(nine: str, check: int) -> None:
    assert luhn_check_digit(nine) == check


@pytest.mark.parametrize("bad", ["", "12345678", "1234567890", "12345678a", "１２３４５６７８９"])
def test_luhn_check_digit_rejects_non_nine_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        luhn_check_digit(bad)


# ------------------------------------------------------------------- accepted formats


def test_skatteverket_test_number_twelve_digits() -> None:
    pn = parse_personal_number("19121212-1212")
    assert pn.value == "191212121212"
    assert pn.birth_date == date(1912, 12, 12)
    assert pn.is_coordination_number is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("191212121212", "191212121212"),  # YYYYMMDDNNNC
        ("19121212-1212", "191212121212"),  # YYYYMMDD-NNNC
        ("121212-1212", "201212121212"),  # YYMMDD-NNNC, under 100 -> 2012
        ("1212121212", "201212121212"),  # YYMMDDNNNC
        ("121212+1212", "191212121212"),  # YYMMDD+NNNC, 100 or older -> 1912
        ("811218-9876", "198112189876"),
        ("8112189876", "198112189876"),
        ("19811218-9876", "198112189876"),
        ("  19121212-1212 \n", "191212121212"),  # surrounding whitespace is stripped
        ("\t121212-1212  ", "201212121212"),
    ],
)
def test_accepted_formats(raw: str, expected: str) -> None:
    assert parse_at_today(raw).value == expected


def test_default_today_is_used_for_ten_digit_forms() -> None:
    assert parse_personal_number("121212-1212").birth_date == date(2012, 12, 12)
    assert parse_personal_number("811218-9876").birth_date == date(1981, 12, 18)


def test_make_personal_number_known_values() -> None:
    assert make_personal_number(date(1912, 12, 12), 121) == "191212121212"
    assert make_personal_number(date(1981, 12, 18), 987) == "198112189876"
    assert make_personal_number(date(2000, 1, 1), 0)[8:11] == "000"
    assert make_personal_number(date(1912, 12, 12), 121, coordination=True)[:8] == "19121272"


@pytest.mark.parametrize("serial", [-1, 1000])
def test_make_personal_number_rejects_bad_serial(serial: int) -> None:
    with pytest.raises(ValueError):
        make_personal_number(date(2000, 1, 1), serial)


# --------------------------------------------------------------------------- centuries


@pytest.mark.parametrize(
    ("birth_in_number", "sep", "expected_birth"),
    [
        # Born today: still the current century.
        (date(2025, 6, 15), "-", date(2025, 6, 15)),
        (date(2025, 6, 15), "", date(2025, 6, 15)),
        # Tomorrow's date this year would be in the future -> previous century.
        (date(2025, 6, 16), "-", date(1925, 6, 16)),
        (date(2025, 6, 16), "", date(1925, 6, 16)),
        # Yesterday this year is in the past.
        (date(2025, 6, 14), "-", date(2025, 6, 14)),
        (date(2000, 1, 1), "-", date(2000, 1, 1)),
        (date(2026, 1, 1), "-", date(1926, 1, 1)),
        (date(1999, 12, 31), "-", date(1999, 12, 31)),
        # "+" means 100 or older: one more century back.
        (date(2025, 6, 15), "+", date(1925, 6, 15)),  # exactly 100 today
        (date(2025, 6, 16), "+", date(1825, 6, 16)),
        (date(2025, 6, 14), "+", date(1925, 6, 14)),
        (date(2000, 1, 1), "+", date(1900, 1, 1)),
        (date(1999, 12, 31), "+", date(1899, 12, 31)),
    ],
)
def test_century_for_ten_digit_forms(birth_in_number: date, sep: str, expected_birth: date) -> None:
    raw = ten(birth_in_number, 123, sep)
    pn = parse_at_today(raw)
    assert pn.birth_date == expected_birth
    assert pn.value == make_personal_number(expected_birth, 123)


def test_century_depends_on_today() -> None:
    raw = ten(date(2000, 1, 1), 42)
    assert parse_personal_number(raw, today=date(2025, 1, 1)).birth_date == date(2000, 1, 1)
    assert parse_personal_number(raw, today=date(1999, 12, 31)).birth_date == date(1900, 1, 1)
    assert parse_personal_number(raw, today=date(2000, 1, 1)).birth_date == date(2000, 1, 1)
    plus = ten(date(2000, 1, 1), 42, "+")
    assert parse_personal_number(plus, today=date(1999, 12, 31)).birth_date == date(1800, 1, 1)


def test_person_who_is_100_today_needs_plus() -> None:
    birth = date(1925, 6, 15)
    pn = parse_at_today(ten(birth, 1, "+"))
    assert pn.birth_date == birth
    assert pn.age_on(TODAY) == 100
    # With "-" the same digits mean a newborn.
    assert parse_at_today(ten(birth, 1, "-")).birth_date == TODAY


def test_plus_century_cannot_go_before_year_one() -> None:
    raw = ten(date(2000, 1, 1), 42, "+")
    expect_invalid(lambda r: parse_personal_number(r, today=date(50, 1, 1)), raw)


# ---------------------------------------------------------------------------- leap day


def test_leap_day_2000_valid() -> None:
    pn = parse_personal_number(with_check("20000229123"))
    assert pn.birth_date == date(2000, 2, 29)


@pytest.mark.parametrize("body", ["19000229123", "20010229123", "21000229123"])
def test_leap_day_in_non_leap_year_invalid(body: str) -> None:
    exc = expect_invalid(parse_personal_number, with_check(body))
    assert str(exc) == "personal number is not a real date"


def test_leap_day_ten_digit_forms() -> None:
    raw = f"000229-123{luhn_check_digit('000229123')}"
    assert parse_at_today(raw).birth_date == date(2000, 2, 29)
    # "+" puts it in 1900, which is not a leap year.
    exc = expect_invalid(parse_at_today, raw.replace("-", "+"))
    assert str(exc) == "personal number is not a real date"
    expect_invalid(parse_at_today, f"010229-123{luhn_check_digit('010229123')}")
    assert parse_at_today(f"040229123{luhn_check_digit('040229123')}").birth_date == date(2004, 2, 29)


@pytest.mark.parametrize(
    "body",
    ["19121300123", "19120001123", "19120100123", "19120132123", "19120431123", "19120150123", "00000101123"],
)
def test_not_a_real_date(body: str) -> None:
    exc = expect_invalid(parse_personal_number, with_check(body))
    assert str(exc) == "personal number is not a real date"


# ------------------------------------------------------------------ samordningsnummer


def test_coordination_number_basic() -> None:
    raw = with_check("19121272121")
    pn = parse_personal_number(raw)
    assert pn.is_coordination_number is True
    assert pn.birth_date == date(1912, 12, 12)
    assert pn.value == raw
    assert pn.masked == "19121272-****"


@pytest.mark.parametrize(("day_field", "real_day"), [(61, 1), (75, 15), (91, 31)])
def test_coordination_day_range(day_field: int, real_day: int) -> None:
    pn = parse_personal_number(with_check(f"199001{day_field}456"))
    assert pn.is_coordination_number is True
    assert pn.birth_date == date(1990, 1, real_day)


@pytest.mark.parametrize("day_field", [32, 59, 60, 92, 99])
def test_coordination_day_out_of_range(day_field: int) -> None:
    expect_invalid(parse_personal_number, with_check(f"199001{day_field}456"))


def test_coordination_leap_day_and_month_length() -> None:
    assert parse_personal_number(with_check("20000289123")).birth_date == date(2000, 2, 29)
    expect_invalid(parse_personal_number, with_check("20010289123"))  # 2001-02-29
    # April has 30 days: day field 90 -> 30 is valid, 91 -> 31 is not.
    assert parse_personal_number(with_check("19900490123")).birth_date == date(1990, 4, 30)
    expect_invalid(parse_personal_number, with_check("19900491123"))


def test_coordination_ten_digit_century_uses_real_day() -> None:
    # Day field 76 -> real day 16 June: after TODAY (15 June), so previous century.
    raw = ten(date(2025, 6, 16), 321, "-", coordination=True)
    pn = parse_at_today(raw)
    assert pn.is_coordination_number
    assert pn.birth_date == date(1925, 6, 16)
    raw_today = ten(date(2025, 6, 15), 321, "", coordination=True)
    assert parse_at_today(raw_today).birth_date == date(2025, 6, 15)
    raw_plus = ten(date(2025, 6, 15), 321, "+", coordination=True)
    assert parse_at_today(raw_plus).birth_date == date(1925, 6, 15)


# ------------------------------------------------------------------------ rejections


@pytest.mark.parametrize(
    "raw", ["19121212-1213", "191212121210", "121212-1211", "1212121219", "121212+1213", "811218-9875"]
)
def test_bad_check_digit(raw: str) -> None:
    exc = expect_invalid(parse_at_today, raw)
    assert str(exc) == "personal number has an invalid check digit"


@pytest.mark.parametrize(
    "raw",
    [
        "19121212-121A",
        "abcdefghijkl",
        "YYYYMMDD-NNNC",
        "1912I212-1212",
        "19121212–1212",  # en dash
        "19121212/1212",
        "١٩١٢١٢١٢١٢١٢",  # Arabic-Indic digits
        "１９１２１２１２１２１２",  # full-width digits
        "19121212 1212",
    ],
)
def test_letters_and_foreign_characters(raw: str) -> None:
    expect_invalid(parse_at_today, raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1",
        "121212121",  # 9
        "12121212121",  # 11
        "1912121212120",  # 13
        "19121212-12120",
        "19121212-121",
        "121212-121",
        "121212-12120",
        "1912121-21212",  # misplaced separator
        "19121212+1212",  # '+' only allowed in the 10-digit form
        "121212--1212",
        "121212-+1212",
        "-1212121212",
        "1212121212-",
        "+191212121212",
    ],
)
def test_wrong_lengths_and_shapes(raw: str) -> None:
    exc = expect_invalid(parse_at_today, raw)
    assert str(exc) == "personal number must be 10 or 12 digits"


def test_error_messages_never_contain_input() -> None:
    samples = [
        "19121212-1213",
        with_check("19000229123"),
        with_check("19121300123"),
        "19121212-121A",
        "1912121212120",
        "811218-9875",
        "811218+9875",
        "123456789012345678",
    ]
    for raw in samples:
        expect_invalid(parse_at_today, raw)


# ------------------------------------------------------------------ PersonalNumber


def test_personal_number_is_redacted() -> None:
    pn = parse_personal_number("19121212-1212")
    for text in (repr(pn), str(pn), f"{pn}", f"{pn!r}", str([pn]), str({"pn": pn})):
        assert "1212" not in text
        assert "<redacted>" in text
    assert repr(pn) == "PersonalNumber(<redacted>)"


def test_personal_number_masked() -> None:
    assert parse_personal_number("19121212-1212").masked == "19121212-****"
    assert parse_at_today("811218-9876").masked == "19811218-****"


def test_personal_number_is_frozen_and_comparable() -> None:
    a = parse_personal_number("19121212-1212")
    b = parse_at_today("121212+1212")
    assert a == b
    assert hash(a) == hash(b)
    assert a != parse_at_today("121212-1212")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.value = "201212121212"  # type: ignore[misc]


def test_personal_number_constructor_validates() -> None:
    PersonalNumber("191212121212", False, date(1912, 12, 12))
    bad = [
        ("191212121213", False, date(1912, 12, 12)),  # check digit
        ("191212121212", True, date(1912, 12, 12)),  # wrong coordination flag
        ("191212121212", False, date(1912, 12, 13)),  # wrong birth date
        ("19121212-1212", False, date(1912, 12, 12)),  # not canonical
    ]
    for value, coordination, birth in bad:
        with pytest.raises(InvalidIdentifier) as info:
            PersonalNumber(value, coordination, birth)
        assert_no_leak(info.value, value)


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(1912, 12, 12), date(2012, 12, 11), 99),
        (date(1912, 12, 12), date(2012, 12, 12), 100),
        (date(1981, 12, 18), date(2025, 6, 15), 43),
        (date(2000, 2, 29), date(2001, 2, 28), 0),
        (date(2000, 2, 29), date(2001, 3, 1), 1),
        (date(2000, 2, 29), date(2004, 2, 29), 4),
        (date(2000, 1, 1), date(2000, 1, 1), 0),
    ],
)
def test_age_on(birth: date, on: date, age: int) -> None:
    pn = parse_personal_number(make_personal_number(birth, 7))
    assert pn.age_on(on) == age
    coordination = parse_personal_number(make_personal_number(birth, 7, coordination=True))
    assert coordination.age_on(on) == age


def test_age_on_before_birth_raises() -> None:
    pn = parse_personal_number("19121212-1212")
    with pytest.raises(ValueError) as info:
        pn.age_on(date(1900, 1, 1))
    assert "1212" not in str(info.value)


# ------------------------------------------------------------- organisationsnummer

REAL_ORG_NUMBERS = {
    "232100-0016": "Region Stockholm",
    "212000-0142": "Stockholms stad",
    "202100-5489": "Statens institutionsstyrelse (SiS)",
}


@pytest.mark.parametrize("formatted", sorted(REAL_ORG_NUMBERS))
def test_real_org_numbers(formatted: str) -> None:
    digits = formatted.replace("-", "")
    assert normalise_org_number(formatted) == digits
    assert normalise_org_number(digits) == digits
    assert normalise_org_number(f"  {formatted} ") == digits
    assert format_org_number(digits) == formatted
    assert format_org_number(formatted) == formatted


def test_region_org_number() -> None:
    assert is_region_org_number("2321000016") is True
    assert is_region_org_number("232100-0016") is True
    assert is_region_org_number("2120000142") is False
    assert is_region_org_number("2021005489") is False
    assert is_region_org_number("2321000017") is False  # bad check digit
    assert is_region_org_number("garbage") is False


@pytest.mark.parametrize(
    "raw",
    [
        "2321000017",  # check digit
        "232100-0015",
        "8112189876",  # a personnummer: third digit 1 < 2
        "1212121212",
        "0000000000",
        "232100001",
        "23210000166",
        "23210-00016",
        "232100 0016",
        "232100-001A",
        "SE2321000016",
        "",
        "２３２１０００００１６",
    ],
)
def test_invalid_org_numbers(raw: str) -> None:
    expect_invalid(normalise_org_number, raw)
    expect_invalid(format_org_number, raw)
    assert is_region_org_number(raw) is False


def test_org_number_third_digit_rule() -> None:
    for third in "01":
        body = f"55{third}000000"
        raw = body + str(luhn_check_digit(body))
        exc = expect_invalid(normalise_org_number, raw)
        assert "third digit" in str(exc)
    body = "552000000"
    assert normalise_org_number(body + str(luhn_check_digit(body))) == body + str(luhn_check_digit(body))


# ------------------------------------------------------------------------- HSA-id


@pytest.mark.parametrize(
    "raw",
    [
        "SE2321000016-15CQ",
        "SE2321000016-1003",
        "SE2120000142-a",
        "SE2021005489-Abc123",
        "SE2321000016-" + "X" * 18,  # exactly 31 characters
    ],
)
def test_valid_hsa_ids(raw: str) -> None:
    assert validate_hsa_id(raw) is raw


@pytest.mark.parametrize(
    "raw",
    [
        "SE2321000016-" + "X" * 19,  # 32 characters
        "se2321000016-15CQ",
        "Se2321000016-15CQ",
        "2321000016-15CQ",
        "SE2321000017-15CQ",  # bad check digit
        "SE8112189876-1234",  # third digit rule
        "SE232100-0016-15CQ",  # dashed organisation number
        "SE2321000016-",
        "SE2321000016",
        "SE2321000016_15CQ",
        "SE2321000016-15_CQ",
        "SE2321000016-15-CQ",
        "SE2321000016-15 CQ",
        "SE2321000016-ÅÄÖ",
        " SE2321000016-15CQ",
        "SE2321000016-15CQ\n",
        "",
    ],
)
def test_invalid_hsa_ids(raw: str) -> None:
    expect_invalid(validate_hsa_id, raw)


# ----------------------------------------------------------------------- counties

EXPECTED_COUNTIES = {
    "01": "Stockholms län",
    "03": "Uppsala län",
    "04": "Södermanlands län",
    "05": "Östergötlands län",
    "06": "Jönköpings län",
    "07": "Kronobergs län",
    "08": "Kalmar län",
    "09": "Gotlands län",
    "10": "Blekinge län",
    "12": "Skåne län",
    "13": "Hallands län",
    "14": "Västra Götalands län",
    "17": "Värmlands län",
    "18": "Örebro län",
    "19": "Västmanlands län",
    "20": "Dalarnas län",
    "21": "Gävleborgs län",
    "22": "Västernorrlands län",
    "23": "Jämtlands län",
    "24": "Västerbottens län",
    "25": "Norrbottens län",
}


def test_county_names() -> None:
    assert COUNTY_NAMES == EXPECTED_COUNTIES
    assert len(COUNTY_NAMES) == 21


@pytest.mark.parametrize("code", sorted(EXPECTED_COUNTIES))
def test_valid_county_codes(code: str) -> None:
    assert validate_county_code(code) == code
    assert validate_county_code(f" {code} ") == code


@pytest.mark.parametrize(
    "raw", ["00", "02", "11", "15", "16", "26", "99", "1", "001", "ab", "", "0 1", "+1", "٠١"]
)
def test_invalid_county_codes(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_county_code(raw)


def test_invalid_county_codes_cover_every_unlisted_code() -> None:
    for n in range(100):
        code = f"{n:02d}"
        if code in EXPECTED_COUNTIES:
            assert validate_county_code(code) == code
        else:
            with pytest.raises(InvalidIdentifier):
                validate_county_code(code)


# ------------------------------------------------------------------------ hypothesis

births = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
serials = st.integers(min_value=0, max_value=999)


@given(birth=births, serial=serials, coordination=st.booleans())
def test_make_parse_round_trip_twelve_digits(birth: date, serial: int, coordination: bool) -> None:
    value = make_personal_number(birth, serial, coordination)
    assert len(value) == 12
    assert value.isdigit()
    for raw in (value, f"{value[:8]}-{value[8:]}"):
        pn = parse_personal_number(raw)
        assert pn.value == value
        assert pn.birth_date == birth
        assert pn.is_coordination_number is coordination
        assert int(value[8:11]) == serial


@given(
    today=st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 12, 31)),
    days_old=st.integers(min_value=0, max_value=200 * 366),
    serial=serials,
    coordination=st.booleans(),
    no_separator=st.booleans(),
)
def test_make_parse_round_trip_ten_digits(
    today: date, days_old: int, serial: int, coordination: bool, no_separator: bool
) -> None:
    birth = today - timedelta(days=days_old)
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    assume(age < 200)
    sep = ("" if no_separator else "-") if age < 100 else "+"
    value = make_personal_number(birth, serial, coordination)
    pn = parse_personal_number(f"{value[2:8]}{sep}{value[8:]}", today=today)
    assert pn.value == value
    assert pn.birth_date == birth
    assert pn.is_coordination_number is coordination
    assert pn.age_on(today) == age


@given(
    birth=births,
    serial=serials,
    coordination=st.booleans(),
    position=st.integers(min_value=0, max_value=11),
    replacement=st.sampled_from("0123456789"),
)
def test_single_digit_change_never_gives_the_original(
    birth: date, serial: int, coordination: bool, position: int, replacement: str
) -> None:
    value = make_personal_number(birth, serial, coordination)
    assume(value[position] != replacement)
    original = parse_personal_number(value)
    mutated = value[:position] + replacement + value[position + 1 :]
    try:
        other = parse_personal_number(mutated)
    except InvalidIdentifier as exc:
        assert_no_leak(exc, mutated)
        return
    # Only the century digits lie outside the Luhn-protected part; a change there
    # can at most produce a different (valid) person, never the original one.
    assert position < 2
    assert other.value == mutated
    assert other != original
    assert other.birth_date != original.birth_date


@st.composite
def org_numbers(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from("123456789"))
    second = draw(st.sampled_from("0123456789"))
    third = draw(st.sampled_from("23456789"))
    rest = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    body = first + second + third + rest
    return body + str(luhn_check_digit(body))


@given(digits=org_numbers())
def test_org_number_round_trip(digits: str) -> None:
    formatted = format_org_number(digits)
    assert re.fullmatch(r"[0-9]{6}-[0-9]{4}", formatted)
    assert normalise_org_number(formatted) == digits
    assert normalise_org_number(digits) == digits
    assert is_region_org_number(digits) is digits.startswith("2321")
    hsa = f"SE{digits}-X1"
    assert validate_hsa_id(hsa) == hsa


@given(
    digits=org_numbers(),
    position=st.integers(min_value=0, max_value=9),
    replacement=st.sampled_from("0123456789"),
)
def test_org_number_single_digit_change_is_invalid(digits: str, position: int, replacement: str) -> None:
    assume(digits[position] != replacement)
    mutated = digits[:position] + replacement + digits[position + 1 :]
    expect_invalid(normalise_org_number, mutated)
    expect_invalid(validate_hsa_id, f"SE{mutated}-ABC")


@given(raw=st.text(alphabet=st.sampled_from("0123456789-+ \tAa٣"), max_size=20))
def test_error_messages_never_leak_random_input(raw: str) -> None:
    for func in (parse_at_today, normalise_org_number, format_org_number, validate_hsa_id):
        try:
            func(raw)
        except InvalidIdentifier as exc:
            assert_no_leak(exc, raw)


@given(birth=births, serial=serials, coordination=st.booleans())
def test_repr_never_contains_digits(birth: date, serial: int, coordination: bool) -> None:
    pn = parse_personal_number(make_personal_number(birth, serial, coordination))
    assert repr(pn) == str(pn) == "PersonalNumber(<redacted>)"
    assert pn.masked == f"{pn.value[:8]}-****"
