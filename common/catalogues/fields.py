"""Turning the text cells of catalogue rows into OEC values.

Both readers share these rules: what counts as a number, which errors OEC accepts, how
limits are written, how unit conversions keep their precision and how coordinates are
spelled.

Measured values are built a column at a time (``measured``) and once per distinct cell:
a full catalogue holds half a million cells and most of them repeat. What needs the whole
row (names, dates, positions) is read through ``Row``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from common.catalogues.table import Rows
from common.errors import InvalidRowError
from common.numbers import clean_decimal, format_significant
from common.records import PlanetRecord, RejectedRow, Value

# Cells that mean "no value" in one catalogue or the other; they are not errors.
MISSING = frozenset({"", "nan", "none", "null", "inf", "+inf", "-inf", "infinity", "-infinity"})
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLANET_LETTER = re.compile(r"[a-z]{1,2}")
# "Ab" is planet b of component A (exoplanet.eu's "tau Boo Ab", "DP Leo (AB)b").
_COMPONENT_LETTER = re.compile(r"(?:[A-Z]{1,2}|\([A-Z]{1,3}\))([a-z])")
_LIMIT_FLAGS = {None: 0, "0": 0, "1": 1, "-1": -1}

# Julian dates between 1858 and 2406: exoplanet.eu also holds truncated (BJD - 2450000,
# BJD - 2457000) or mistyped epochs, which would be wrong in OEC's BJD tag.
_FIRST_JD, _LAST_JD = 2_400_000.0, 2_600_000.0

# A converted number keeps the source's significant digits, but at least the minimum, so a
# round source number ("11" Earth masses) is not cut to two digits in Jupiter masses, and at
# most the maximum: NASA's Earth-unit columns are themselves conversions printed to a dozen
# digits ("4914.89848585"), and carrying those into OEC would invent precision.
_MIN_VALUE_DIGITS = 3
_MIN_ERROR_DIGITS = 2
_MAX_DIGITS = 5


class Columns:
    """The rows of a table as cleaned columns: stripped texts, numbers as OEC decimal text.

    A row with non-numeric text in a number column, or with any other problem a column
    check finds, is recorded in ``problems`` and comes out of ``rows()`` as a RejectedRow.
    """

    def __init__(self, rows: Rows, file: str, texts: Iterable[str], numbers: Iterable[str]) -> None:
        self.file = file
        self.lines: list[int] = rows.lines
        self.size = len(self.lines)
        self.problems: dict[int, RejectedRow] = {}
        present = set(rows.header)
        self._texts = {
            name: [cell.strip() for cell in rows.column(name)]
            for name in dict.fromkeys(texts)
            if name in present
        }
        self._numbers = {
            name: self._clean_numbers(name, rows.column(name))
            for name in dict.fromkeys(numbers)
            if name in present
        }
        self._no_texts = [""] * self.size
        self._no_numbers: list[str | None] = [None] * self.size

    def text(self, name: str) -> list[str]:
        """The stripped cells of a column, all "" when the table lacks it."""
        return self._texts.get(name, self._no_texts)

    def number(self, name: str | None) -> list[str | None]:
        """The decimal texts of a column, None for missing cells or when the table lacks it."""
        return self._numbers.get(name, self._no_numbers) if name else self._no_numbers

    def problem(self, index: int, column: str | None, reason: str) -> None:
        """Reject row ``index``; the first problem found is the one reported."""
        if index not in self.problems:
            row = self.lines[index]
            self.problems[index] = RejectedRow(
                file=self.file, row=row, column=column, reason=reason
            )

    def rows(self) -> Iterator[Row | RejectedRow]:
        """Every row, or its RejectedRow; call it after building the columns of values, whose
        checks (limit flags, years) add problems too."""
        for index in range(self.size):
            yield self.problems.get(index) or Row(self, index)

    def limit_flags(self, name: str | None) -> list[int]:
        """NASA's limit flags: 1 upper limit, -1 lower limit, 0 (or empty) a measurement."""
        flags: list[int] = []
        for index, text in enumerate(self.number(name)):
            flag = _LIMIT_FLAGS.get(text)
            if flag is None:
                self.problem(index, name, f"limit flag is {text!r}, not -1, 0 or 1")
                flag = 0
            flags.append(flag)
        return flags

    def years(self, name: str) -> list[Value | None]:
        values: list[Value | None] = []
        for index, text in enumerate(self.number(name)):
            if text is not None and not text.isdigit():
                self.problem(index, name, f"not a year: {text!r}")
                text = None
            values.append(None if text is None else text_value(text))
        return values

    def _clean_numbers(self, name: str, cells: list[str]) -> list[str | None]:
        clean: dict[str, str | None] = {}
        bad: set[str] = set()
        for cell in set(cells):
            try:
                clean[cell] = decimal_text(cell)
            except ValueError:
                clean[cell] = None
                bad.add(cell)
        if bad:
            for index, cell in enumerate(cells):
                if cell in bad:
                    self.problem(index, name, f"not a number: {cell.strip()!r}")
        return [clean[cell] for cell in cells]


class Row:
    """One row of a Columns: what needs the whole row (names, dates, positions)."""

    __slots__ = ("columns", "index")

    def __init__(self, columns: Columns, index: int) -> None:
        self.columns = columns
        self.index = index

    @property
    def file(self) -> str:
        return self.columns.file

    @property
    def line(self) -> int:
        return self.columns.lines[self.index]

    def invalid(self, column: str | None, reason: str) -> InvalidRowError:
        return InvalidRowError(self.file, self.line, column, reason)

    def raw(self, column: str) -> str:
        """The stripped cell as written, "" when the column is absent."""
        return self.columns.text(column)[self.index]

    def text(self, column: str) -> str:
        """The stripped cell, "" when the column is absent or the cell says nan/None."""
        text = self.raw(column)
        return "" if text.lower() in MISSING else text

    def number(self, column: str) -> str | None:
        return self.columns.number(column)[self.index]

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

    def pick(self, values: dict[str, list[Value | None]]) -> dict[str, Value]:
        """This row's values from columns of values, keyed by OEC tag."""
        picked = {tag: column[self.index] for tag, column in values.items()}
        return {tag: value for tag, value in picked.items() if value is not None}


# Cells repeat across columns too ("0.0", "1.0"); the cache spans columns and files.
@functools.lru_cache(maxsize=1 << 16)
def decimal_text(text: str) -> str | None:
    """A numeric cell as OEC decimal text; None for empty, nan, inf, None.

    Raises ValueError for text that is not a plain decimal number (Python's float() would
    also take "1_000" or "0x1p3").
    """
    text = text.strip()
    if text.lower() in MISSING:
        return None
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    if not math.isfinite(float(text)):
        return None
    if text.lstrip("+-").startswith("."):
        text = text.replace(".", "0.", 1)
    return clean_decimal(text)


def significant_digits(text: str) -> int:
    """How many significant digits decimal text carries ("0.0120" -> 3, "4914.9" -> 5)."""
    mantissa = text.lower().partition("e")[0]
    digits = mantissa.lstrip("+-").replace(".", "").lstrip("0")
    return max(len(digits), 1)


def divide(text: str, divisor: float, min_digits: int) -> str:
    """``text / divisor`` with the precision of ``text``: for unit conversions."""
    digits = min(max(significant_digits(text), min_digits), _MAX_DIGITS)
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
    columns: Columns,
    column: str,
    plus: str | None = None,
    minus: str | None = None,
    limit: str | None = None,
    *,
    divisor: float | None = None,
    types: Sequence[str | None] | None = None,
    unit: str | None = None,
    where: Sequence[bool] | None = None,
) -> list[Value | None]:
    """The OEC values of a measured column with its errors or limits, None where empty.

    ``divisor`` converts units (Earth to Jupiter masses); ``types`` (one per row) and
    ``unit`` become the attributes of the same names. Rows where ``where`` is False are
    left None, to convert only the rows a fallback column is needed for.
    """
    values = columns.number(column)
    if where is not None:
        values = [value if wanted else None for value, wanted in zip(values, where, strict=True)]
    if all(value is None for value in values):
        return [None] * columns.size
    row_types = types if types is not None else [None] * columns.size
    rows = zip(
        values,
        columns.number(plus),
        columns.number(minus),
        columns.limit_flags(limit),
        row_types,
        strict=True,
    )
    return [
        None if value is None else oec_value(value, p, m, flag, divisor, kind, unit)
        for value, p, m, flag, kind in rows
    ]


# Values are frozen, so planets of one star (and repeated errors) can share them; building
# a pydantic model is the dearest step of reading a row.
@functools.lru_cache(maxsize=1 << 16)
def oec_value(
    value: str,
    plus: str | None,
    minus: str | None,
    flag: int,
    divisor: float | None,
    type: str | None,
    unit: str | None,
) -> Value:
    """A Value from decimal texts; ``flag`` 1 makes it an upper limit, -1 a lower limit."""
    if divisor is not None:
        value = divide(value, divisor, _MIN_VALUE_DIGITS)
    if flag == 1:
        return Value(upperlimit=value, type=type, unit=unit)
    if flag == -1:
        return Value(lowerlimit=value, type=type, unit=unit)
    errors = error_pair(plus, minus)
    if errors is None:
        return Value(value=value, type=type, unit=unit)
    errorplus, errorminus = errors
    if divisor is not None:
        errorplus = divide(errorplus, divisor, _MIN_ERROR_DIGITS)
        errorminus = divide(errorminus, divisor, _MIN_ERROR_DIGITS)
    return Value(value=value, errorplus=errorplus, errorminus=errorminus, type=type, unit=unit)


@functools.lru_cache(maxsize=1 << 12)
def text_value(text: str) -> Value:
    return Value(value=text)


def texts(columns: Columns, column: str) -> list[Value | None]:
    """A text column (spectral type) as Values, None where empty or nan/None."""
    return [
        text_value(text) if text and text.lower() not in MISSING else None
        for text in columns.text(column)
    ]


def transit_times(values: list[Value | None]) -> list[Value | None]:
    """The values that are plausible full Julian dates (see _FIRST_JD), None for others."""
    return [value if _plausible_jd(value) else None for value in values]


def _plausible_jd(value: Value | None) -> bool:
    if value is None:
        return False
    number = float(value.value or value.upperlimit or value.lowerlimit or "nan")
    return _FIRST_JD <= number <= _LAST_JD


def planet_letter(name: str) -> str | None:
    """The planet letter that ends a name: "b" for "11 Com b", "tau Boo Ab" or "X (AB)b".

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


def convert_rows(
    columns: Columns, convert: Callable[[Row], PlanetRecord]
) -> tuple[list[PlanetRecord], list[RejectedRow]]:
    """``convert`` applied to every row; rows with a problem or an InvalidRowError are
    rejected instead, and the rest of the table is still read."""
    records: list[PlanetRecord] = []
    rejected: list[RejectedRow] = []
    for row in columns.rows():
        if isinstance(row, RejectedRow):
            rejected.append(row)
            continue
        try:
            records.append(convert(row))
        except InvalidRowError as error:
            rejected.append(
                RejectedRow(file=row.file, row=row.line, column=error.column, reason=error.reason)
            )
    return records, rejected
