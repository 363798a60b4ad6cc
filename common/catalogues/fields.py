"""Turning the text cells of one catalogue row into OEC values.

Both readers share these rules: what counts as a number, which errors OEC accepts, how
limits are written, how unit conversions keep their precision and how coordinates are
spelled.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from common.errors import InvalidRowError
from common.numbers import clean_decimal, format_significant
from common.records import Value

# Cells that mean "no value" in one catalogue or the other; they are not errors.
MISSING = frozenset({"", "nan", "none", "null", "inf", "+inf", "-inf", "infinity", "-infinity"})
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLANET_LETTER = re.compile(r"[a-z]{1,2}")
# "Ab" is planet b of component A (exoplanet.eu's "tau Boo Ab").
_COMPONENT_LETTER = re.compile(r"[A-Z]{1,2}([a-z])")

# Julian dates between 1858 and 2406: exoplanet.eu also holds truncated (BJD - 2450000,
# BJD - 2457000) or mistyped epochs, which would be wrong in OEC's BJD tag.
_FIRST_JD, _LAST_JD = 2_400_000.0, 2_600_000.0

# A converted number keeps the source's significant digits but never fewer than these, so a
# round source number ("11" Earth masses) is not cut to two digits in Jupiter masses.
_MIN_VALUE_DIGITS = 3
_MIN_ERROR_DIGITS = 2


class Row:
    """One data row: its cells by column name, and where it is for error reports."""

    __slots__ = ("cells", "file", "line")

    def __init__(self, file: str, line: int, cells: dict[str, str]) -> None:
        self.file = file
        self.line = line
        self.cells = cells

    def invalid(self, column: str | None, reason: str) -> InvalidRowError:
        return InvalidRowError(self.file, self.line, column, reason)

    def text(self, column: str) -> str:
        """The stripped cell, "" when the column is absent or the cell says nan/None."""
        text = self.cells.get(column, "").strip()
        return "" if text.lower() in MISSING else text

    def number(self, column: str | None) -> str | None:
        """The cell as OEC decimal text, None when missing; InvalidRowError when not a number."""
        if column is None:
            return None
        text = self.cells.get(column, "").strip()
        if text.lower() in MISSING:
            return None
        if not _NUMBER.fullmatch(text):
            raise self.invalid(column, f"not a number: {text!r}")
        if not math.isfinite(float(text)):
            return None
        return clean_decimal(_leading_zero(text))

    def real(self, column: str) -> float | None:
        text = self.number(column)
        return None if text is None else float(text)

    def date(self, column: str) -> dt.date | None:
        text = self.text(column)
        if not text:
            return None
        try:
            if not _DATE.fullmatch(text):
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        except ValueError:
            raise self.invalid(column, f"not a YYYY-MM-DD date: {text!r}") from None

    def year(self, column: str) -> Value | None:
        text = self.number(column)
        if text is None:
            return None
        if not text.isdigit():
            raise self.invalid(column, f"not a year: {text!r}")
        return Value(value=text)

    def limit_flag(self, column: str | None) -> int:
        """NASA's limit flag: 1 upper limit, -1 lower limit, 0 a measurement."""
        text = self.number(column)
        if text is None or text == "0":
            return 0
        if text in {"1", "-1"}:
            return int(text)
        raise self.invalid(column, f"limit flag is {text!r}, not -1, 0 or 1")


def _leading_zero(text: str) -> str:
    return re.sub(r"^([+-]?)\.", r"\g<1>0.", text)


def significant_digits(text: str) -> int:
    """How many significant digits decimal text carries ("0.0120" -> 3, "4914.9" -> 5)."""
    mantissa = text.lower().partition("e")[0]
    digits = mantissa.lstrip("+-").replace(".", "").lstrip("0")
    return max(len(digits), 1)


def divide(text: str, divisor: float, min_digits: int) -> str:
    """``text / divisor`` with the precision of ``text``: for unit conversions."""
    digits = max(significant_digits(text), min_digits)
    return format_significant(float(text) / divisor, digits)


def error_pair(plus: str | None, minus: str | None) -> tuple[str, str] | None:
    """(errorplus, errorminus) as positive text, or None when OEC would reject the pair.

    OEC refuses one-sided and zero errors, so a pair with a missing or zero side is dropped
    whole; the signs that NASA (err2) and exoplanet.eu (error_min) put on the minus side go.
    """
    if plus is None or minus is None or float(plus) == 0 or float(minus) == 0:
        return None
    return plus.lstrip("+-"), minus.lstrip("+-")


def measured(
    row: Row,
    column: str,
    plus: str | None = None,
    minus: str | None = None,
    limit: str | None = None,
    *,
    divisor: float | None = None,
    type: str | None = None,
    unit: str | None = None,
) -> Value | None:
    """The OEC value of a measured column with its errors or limit, None when empty.

    ``divisor`` converts units (Earth to Jupiter masses); ``type`` and ``unit`` become the
    attributes of the same names.
    """
    value = row.number(column)
    if value is None:
        return None
    if divisor is not None:
        value = divide(value, divisor, _MIN_VALUE_DIGITS)
    flag = row.limit_flag(limit)
    if flag == 1:
        return Value(upperlimit=value, type=type, unit=unit)
    if flag == -1:
        return Value(lowerlimit=value, type=type, unit=unit)
    errors = error_pair(row.number(plus), row.number(minus))
    if errors is None:
        return Value(value=value, type=type, unit=unit)
    errorplus, errorminus = errors
    if divisor is not None:
        errorplus = divide(errorplus, divisor, _MIN_ERROR_DIGITS)
        errorminus = divide(errorminus, divisor, _MIN_ERROR_DIGITS)
    return Value(value=value, errorplus=errorplus, errorminus=errorminus, type=type, unit=unit)


def text_value(row: Row, column: str) -> Value | None:
    text = row.text(column)
    return Value(value=text) if text else None


def transit_time(value: Value | None) -> Value | None:
    """The value when it is a plausible full Julian date, else None (see _FIRST_JD)."""
    if value is None:
        return None
    number = float(value.value or value.upperlimit or value.lowerlimit or "nan")
    return value if _FIRST_JD <= number <= _LAST_JD else None


def planet_letter(name: str) -> str | None:
    """The planet letter that ends a name: "b" for "11 Com b" and "tau Boo Ab", else None.

    KOI-style names ("EPIC 201170410.02") end with a number and have no letter.
    """
    last = name.rsplit(None, 1)[-1] if name.strip() else ""
    if _PLANET_LETTER.fullmatch(last):
        return last
    component = _COMPONENT_LETTER.fullmatch(last)
    return component.group(1) if component else None


def split_names(text: str) -> list[str]:
    """The names of a comma-separated list, stripped, without empties or repeats."""
    return list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def hours_text(degrees: float) -> str:
    """Right ascension as OEC writes it, "hh mm ss.ss", from degrees.

    Integer hundredths of a second of time, so rounding 59.999 s carries into the minute
    instead of printing "60.00" (astropy's to_string prints "24 00 00.00" for 359.99999999).
    """
    hundredths = round(degrees / 15 * 360_000) % (24 * 360_000)
    hours, rest = divmod(hundredths, 360_000)
    minutes, rest = divmod(rest, 6_000)
    seconds, fraction = divmod(rest, 100)
    return f"{hours:02d} {minutes:02d} {seconds:02d}.{fraction:02d}"


def degrees_text(degrees: float) -> str:
    """Declination as OEC writes it, "+dd mm ss.s", from degrees."""
    sign = "-" if degrees < 0 else "+"
    tenths = round(abs(degrees) * 36_000)
    whole, rest = divmod(tenths, 36_000)
    minutes, rest = divmod(rest, 600)
    seconds, fraction = divmod(rest, 10)
    if whole == minutes == seconds == fraction == 0:
        sign = "+"
    return f"{sign}{whole:02d} {minutes:02d} {seconds:02d}.{fraction}"


def check_position(row: Row, ra: float | None, dec: float | None) -> None:
    if ra is not None and not 0 <= ra < 360:
        raise row.invalid("ra", f"right ascension {ra} is outside 0-360 degrees")
    if dec is not None and not -90 <= dec <= 90:
        raise row.invalid("dec", f"declination {dec} is outside -90-+90 degrees")
