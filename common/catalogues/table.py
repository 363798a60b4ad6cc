"""A catalogue download as a table of text cells, each row tied to its line in the file.

The csv module does the splitting because it reports where each record ends, which is what
a maintainer needs to find a row in an editor. Every cell stays text so numbers reach OEC
exactly as the source wrote them. The well-formed rows stay the lists csv made (``Rows``):
the readers select rows and take columns as lists; pandas, which held them before, added
nothing but 0.3 s of import to every run that reads a row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from common.catalogues.identity import check as check_identity
from common.errors import NotACatalogueError
from common.records import RejectedRow, Source

# exoplanet.eu's 2022 exports start with "# name,planet_status,...": a header, not a comment.
_HASH_HEADER = re.compile(r"#\s*name\s*,")


@dataclass(frozen=True)
class Rows:
    """Rows of a table, each a list of its cells in the header's order and tied to its
    1-based line in the file."""

    header: list[str]
    lines: list[int]
    cells: list[list[str]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.lines)

    def column(self, name: str) -> list[str]:
        """The cells of column ``name``, in row order."""
        return list(map(itemgetter(self.header.index(name)), self.cells))

    def where(self, keep: Iterable[bool]) -> Rows:
        """The rows for which ``keep`` (one flag per row, in row order) is true."""
        kept = [i for i, wanted in enumerate(keep) if wanted]
        return Rows(self.header, [self.lines[i] for i in kept], [self.cells[i] for i in kept])


@dataclass
class Table:
    file: str
    comments: list[str]
    header: list[str]
    well_formed: Rows  # the rows with the header's number of fields
    rows: int  # data rows in the file, malformed ones included
    rejected: list[RejectedRow]
    cells: dict[int, str]  # line -> a digest of the well-formed row's header and cells

    def unknown_rows(
        self, rows: Rows, context: str, known: Collection[str]
    ) -> tuple[Rows, dict[int, str]]:
        """The ``rows`` (a selection of this table's) whose key is not in ``known``, and
        every row's key by line: a digest of everything a record is read from, the reader's
        ``context`` (the file's name, its date ...), the line, the header and the row's cells
        (Catalogue.row_keys)."""
        keys = {
            line: hashlib.sha256(f"{context}\x1e{line}\x1e{self.cells[line]}".encode()).hexdigest()
            for line in rows.lines
        }
        if known:
            rows = rows.where(keys[line] not in known for line in rows.lines)
        return rows, keys


def decode(data: bytes, file: str) -> str:
    """The text of a download, or NotACatalogueError when it is empty or not text."""
    if not data.strip():
        raise NotACatalogueError(file, "the file is empty")
    if b"\x00" in data:
        raise NotACatalogueError(file, "binary data (NUL bytes), not CSV text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise NotACatalogueError(
            file, f"not UTF-8 text (byte 0x{byte:02x} at offset {error.start})"
        ) from None


def find_header(text: str, file: str) -> tuple[list[str], int, int]:
    """The leading comment lines, the header's 1-based line number and its offset in text."""
    comments: list[str] = []
    position, line = 0, 1
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end + 1
        current = text[position:end].rstrip("\r\n")
        if current.startswith("#") and not _HASH_HEADER.match(current):
            comments.append(current)
        elif current.strip():
            return comments, line, position
        position, line = end, line + 1
    raise NotACatalogueError(file, "no header line after the comments")


def header_names(fields: list[str]) -> list[str]:
    names = [name.strip() for name in fields]
    if names:
        names[0] = names[0].lstrip("#").strip()
    return names


def read_header(text: str, file: str) -> list[str]:
    """The column names of a download, without reading its rows."""
    _, _, offset = find_header(text, file)
    first_line = text[offset:].split("\n", 1)[0]
    return header_names(next(csv.reader([first_line])))


def read_table(data: bytes, file: str, source: Source) -> Table:
    """Split a download of ``source`` into comments, header and rows; malformed rows become
    RejectedRows.

    Raises NotACatalogueError when the download as a whole cannot be trusted: not text, no
    header, not a table of ``source`` (WrongCatalogueError: the other catalogue's), a column
    named twice, no data rows, or a truncated end (an unclosed quote, or a last line cut
    short without its newline).
    """
    text = decode(data, file)
    comments, header_line, offset = find_header(text, file)
    reader = csv.reader(io.StringIO(text[offset:], newline=""), strict=True)
    header = header_names(next(reader))
    check_identity(header, source, file)
    _check_unique(header, file)

    width = len(header)
    good: list[list[str]] = []
    lines: list[int] = []
    cells: dict[int, str] = {}
    rejected: list[RejectedRow] = []
    rows = 0
    last_short = False
    consumed = reader.line_num
    while True:
        start = header_line + consumed
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if _quote_left_open(text, offset, consumed):
                raise NotACatalogueError(
                    file, f"truncated: the quote opened in the row on line {start} never closes"
                ) from None
            consumed = reader.line_num
            rows += 1
            rejected.append(RejectedRow(file=file, row=start, reason=f"malformed CSV: {error}"))
            continue
        consumed = reader.line_num
        if not fields:
            continue
        rows += 1
        last_short = len(fields) < width
        if len(fields) != width:
            reason = f"{len(fields)} fields where the header has {width}"
            rejected.append(RejectedRow(file=file, row=start, reason=reason))
            continue
        good.append(fields)
        lines.append(start)
        cells[start] = hashlib.sha256("\x1f".join([*header, *fields]).encode()).hexdigest()

    if last_short and not text.endswith("\n"):
        raise NotACatalogueError(
            file, f"truncated: the last row (line {rejected[-1].row}) is cut short"
        )
    if rows == 0:
        raise NotACatalogueError(file, "a header but no data rows")
    if not good:
        raise NotACatalogueError(file, f"none of the {rows} rows has the header's {width} fields")
    return Table(file, comments, header, Rows(header, lines, good), rows, rejected, cells)


def _check_unique(header: list[str], file: str) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise NotACatalogueError(file, f"the header names column {name!r} twice")
        seen.add(name)


def _quote_left_open(text: str, offset: int, consumed: int) -> bool:
    """True when the record after `consumed` lines of the table opens a quote it never closes.

    An odd number of quote characters from the record's start to the end of the file means
    the download stopped inside a quoted field.
    """
    start = offset
    for _ in range(consumed):
        start = text.find("\n", start) + 1
        if start == 0:
            return False
    return text.count('"', start) % 2 == 1
