"""Validation and normalisation of Swedish identifiers.

Covers personnummer and samordningsnummer (coordination numbers),
organisationsnummer, HSA-ids and county (län) codes.

Pure Python: no I/O, no HTTP, no database.

Privacy rule: a personal number must never end up in an error message, a
``repr`` or a log line. Every exception raised here carries a fixed message
that does not include the input, and :class:`PersonalNumber` redacts itself in
``repr``/``str``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

__all__ = [
    "COUNTY_NAMES",
    "InvalidIdentifier",
    "PersonalNumber",
    "format_org_number",
    "is_region_org_number",
    "luhn_check_digit",
    "make_personal_number",
    "normalise_org_number",
    "parse_personal_number",
    "validate_county_code",
    "validate_hsa_id",
]


class InvalidIdentifier(ValueError):
    """An identifier failed validation.

    The message never contains the offending value.
    """


COUNTY_NAMES: dict[str, str] = {
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

# Coordination numbers add this to the day of month (so days 61..91).
_COORDINATION_DAY_OFFSET: Final = 60

_REGION_ORG_PREFIX: Final = "2321"
_HSA_ID_MAX_LENGTH: Final = 31

# ASCII digits only: ``\d`` would also match e.g. Arabic-Indic digits.
_PN_12: Final = re.compile(r"([0-9]{8})-?([0-9]{4})")
_PN_10: Final = re.compile(r"([0-9]{6})([-+]?)([0-9]{4})")
_PN_ALLOWED_CHARS: Final = re.compile(r"[0-9+-]*")
_ORG: Final = re.compile(r"([0-9]{6})-?([0-9]{4})")
_HSA: Final = re.compile(r"SE([0-9]{10})-[A-Za-z0-9]+")
_COUNTY: Final = re.compile(r"[0-9]{2}")

_MSG_PN_FORMAT: Final = "personal number must be 10 or 12 digits"
_MSG_PN_CHARS: Final = "personal number may only contain digits and a '-' or '+' separator"
_MSG_PN_DATE: Final = "personal number is not a real date"
_MSG_PN_CHECK: Final = "personal number has an invalid check digit"


def _is_ascii_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


# --------------------------------------------------------------------------- Luhn


def _luhn_sum(digits: str) -> int:
    total = 0
    for index, char in enumerate(digits):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product // 10 + product % 10
    return total


def luhn_check_digit(nine_digits: str) -> int:
    """Return the Luhn check digit for nine digits (weights 2,1,2,1,... from the left)."""
    if len(nine_digits) != 9 or not _is_ascii_digits(nine_digits):
        raise ValueError("Luhn input must be exactly 9 digits")
    return (10 - _luhn_sum(nine_digits) % 10) % 10


def _luhn_valid(ten_digits: str) -> bool:
    return luhn_check_digit(ten_digits[:9]) == int(ten_digits[9])


# ------------------------------------------------------------- personal numbers


def _real_date(year: int, month: int, day: int) -> date:
    """Build the real birth date; raises InvalidIdentifier on impossible dates."""
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidIdentifier(_MSG_PN_DATE) from None


def _split_day(day_field: int) -> tuple[int, bool]:
    """Return (real day of month, is_coordination_number) for the DD field."""
    if 1 + _COORDINATION_DAY_OFFSET <= day_field <= 31 + _COORDINATION_DAY_OFFSET:
        return day_field - _COORDINATION_DAY_OFFSET, True
    if 1 <= day_field <= 31:
        return day_field, False
    raise InvalidIdentifier(_MSG_PN_DATE)


def _decode_canonical(value: str) -> tuple[date, bool]:
    """Validate a canonical 12-digit number; return (birth_date, is_coordination)."""
    if len(value) != 12 or not _is_ascii_digits(value):
        raise InvalidIdentifier(_MSG_PN_FORMAT)
    day, coordination = _split_day(int(value[6:8]))
    birth = _real_date(int(value[0:4]), int(value[4:6]), day)
    if not _luhn_valid(value[2:]):
        raise InvalidIdentifier(_MSG_PN_CHECK)
    return birth, coordination


def _century_year(yy: int, month: int, day: int, plus: bool, today: date) -> int:
    """Full year for a 10-digit number.

    Without ``+`` the person is under 100: the latest year ending in ``yy`` whose
    (month, day) is not after ``today``. With ``+`` it is a further 100 years back.
    Month/day are compared as a tuple so that the century is chosen before the
    date itself is validated (e.g. 29 Feb in a non-leap year is then rejected).
    """
    year = today.year - (today.year - yy) % 100
    if year == today.year and (month, day) > (today.month, today.day):
        year -= 100
    if plus:
        year -= 100
    return year


@dataclass(frozen=True, repr=False)
class PersonalNumber:
    """A validated personnummer or samordningsnummer.

    ``value`` is the canonical 12-digit form YYYYMMDDNNNC (for coordination
    numbers DD is the day + 60). ``birth_date`` is always the real birth date.
    ``repr``/``str`` never show the digits.
    """

    value: str
    is_coordination_number: bool
    birth_date: date

    def __post_init__(self) -> None:
        birth, coordination = _decode_canonical(self.value)
        if birth != self.birth_date or coordination != self.is_coordination_number:
            raise InvalidIdentifier("personal number fields are inconsistent")

    def __repr__(self) -> str:
        return "PersonalNumber(<redacted>)"

    def __str__(self) -> str:
        return "PersonalNumber(<redacted>)"

    @property
    def masked(self) -> str:
        """Date part of the number followed by stars, e.g. ``19121212-****``.

        For coordination numbers the date part is shown as written in the
        number (day + 60), so it stays recognisable as a samordningsnummer.
        """
        return f"{self.value[:8]}-****"

    def age_on(self, d: date) -> int:
        """Age in completed years on ``d``.

        A person born on 29 February becomes a year older on 1 March in non-leap years.
        """
        if d < self.birth_date:
            raise ValueError("date is before the birth date")
        before_birthday = (d.month, d.day) < (self.birth_date.month, self.birth_date.day)
        return d.year - self.birth_date.year - (1 if before_birthday else 0)


def parse_personal_number(raw: str, today: date | None = None) -> PersonalNumber:
    """Parse a personnummer or samordningsnummer into its canonical form.

    Accepted (surrounding whitespace is ignored): ``YYYYMMDDNNNC``,
    ``YYYYMMDD-NNNC``, ``YYMMDD-NNNC``, ``YYMMDDNNNC`` and ``YYMMDD+NNNC``.
    For the 10-digit forms the century is derived relative to ``today``
    (default: ``date.today()``); ``+`` means the person is 100 or older.

    Raises :class:`InvalidIdentifier` (the message never contains the input).
    """
    text = raw.strip()

    match12 = _PN_12.fullmatch(text)
    if match12 is not None:
        canonical = match12.group(1) + match12.group(2)
        birth, coordination = _decode_canonical(canonical)
        return PersonalNumber(canonical, coordination, birth)

    match10 = _PN_10.fullmatch(text)
    if match10 is None:
        if _PN_ALLOWED_CHARS.fullmatch(text) is None:
            raise InvalidIdentifier(_MSG_PN_CHARS)
        raise InvalidIdentifier(_MSG_PN_FORMAT)

    yymmdd, separator, tail = match10.groups()
    month = int(yymmdd[2:4])
    day, _ = _split_day(int(yymmdd[4:6]))
    reference = date.today() if today is None else today
    year = _century_year(int(yymmdd[0:2]), month, day, separator == "+", reference)
    if year < 1:
        raise InvalidIdentifier(_MSG_PN_DATE)
    canonical = f"{year:04d}{yymmdd[2:]}{tail}"
    birth, coordination = _decode_canonical(canonical)
    return PersonalNumber(canonical, coordination, birth)


def make_personal_number(birth: date, serial: int, coordination: bool = False) -> str:
    """Build a valid canonical 12-digit personnummer (or samordningsnummer).

    ``serial`` (0..999) becomes the three digits before the check digit.
    """
    if not 0 <= serial <= 999:
        raise ValueError("serial must be between 0 and 999")
    day = birth.day + (_COORDINATION_DAY_OFFSET if coordination else 0)
    body = f"{birth.year:04d}{birth.month:02d}{day:02d}{serial:03d}"
    return f"{body}{luhn_check_digit(body[2:])}"


# ----------------------------------------------------------------- organisations


def normalise_org_number(raw: str) -> str:
    """Validate an organisationsnummer (``NNNNNN-NNNN`` or ``NNNNNNNNNN``).

    Returns the 10 digits without dash. The third digit must be >= 2 (legal
    entities) and the last digit must be a valid Luhn check digit.
    """
    match = _ORG.fullmatch(raw.strip())
    if match is None:
        raise InvalidIdentifier("organisation number must be 10 digits, optionally as NNNNNN-NNNN")
    digits = match.group(1) + match.group(2)
    if int(digits[2]) < 2:
        raise InvalidIdentifier("organisation number must have a third digit of 2 or higher")
    if not _luhn_valid(digits):
        raise InvalidIdentifier("organisation number has an invalid check digit")
    return digits


def format_org_number(ten_digits: str) -> str:
    """Format a (valid) organisationsnummer as ``NNNNNN-NNNN``.

    The input is validated with :func:`normalise_org_number` first.
    """
    digits = normalise_org_number(ten_digits)
    return f"{digits[:6]}-{digits[6:]}"


def is_region_org_number(ten_digits: str) -> bool:
    """True if this is a valid organisationsnummer of a region (2321xx-xxxx)."""
    try:
        digits = normalise_org_number(ten_digits)
    except InvalidIdentifier:
        return False
    return digits.startswith(_REGION_ORG_PREFIX)


def validate_hsa_id(raw: str) -> str:
    """Validate an HSA-id: ``SE`` + organisationsnummer + ``-`` + ``[A-Za-z0-9]+``.

    At most 31 characters, the prefix must be exactly ``SE``. Returns the input unchanged.
    """
    match = _HSA.fullmatch(raw)
    if match is None:
        raise InvalidIdentifier(
            "HSA-id must be 'SE', a 10-digit organisation number, '-' and a letter/digit suffix"
        )
    if len(raw) > _HSA_ID_MAX_LENGTH:
        raise InvalidIdentifier("HSA-id must be at most 31 characters")
    try:
        normalise_org_number(match.group(1))
    except InvalidIdentifier:
        raise InvalidIdentifier("HSA-id does not contain a valid organisation number") from None
    return raw


# ---------------------------------------------------------------------- counties


def validate_county_code(raw: str) -> str:
    """Validate a two-digit Swedish county (län) code; returns it (whitespace stripped)."""
    code = raw.strip()
    if _COUNTY.fullmatch(code) is None:
        raise InvalidIdentifier("county code must be two digits")
    if code not in COUNTY_NAMES:
        raise InvalidIdentifier("county code is not a Swedish county")
    return code
