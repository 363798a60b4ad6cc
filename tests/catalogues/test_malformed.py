"""Downloads that are no catalogue, and catalogues with bad rows.

A download that cannot be trusted as a whole raises NotACatalogueError naming the file; a
bad row becomes a RejectedRow (file, line, column, reason) and the rest is still read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.catalogues import (
    check_source,
    read_catalogue,
    read_catalogue_file,
    read_source,
    sniff_source,
)
from common.catalogues.exoplaneteu import read_eu
from common.catalogues.nasa import read_nasa
from common.errors import NotACatalogueError, PermanentError, WrongCatalogueError
from common.records import Catalogue, RejectedRow, Source
from tests.paths import SHARED_DATA, require_shared_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "catalogues"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def refused(data: bytes, name: str) -> NotACatalogueError:
    with pytest.raises(NotACatalogueError) as caught:
        read_catalogue(data, name)
    error = caught.value
    assert error.file == name
    assert str(error).startswith(f"{name}: not a catalogue: ")
    assert isinstance(error, PermanentError)  # the bus dead-letters it, no retries
    return error


# --- not a catalogue -------------------------------------------------------------------------


def test_binary_garbage() -> None:
    error = refused(fixture("binary_garbage.csv"), "binary_garbage.csv")
    assert "binary" in error.reason


def test_undecodable_text() -> None:
    data = fixture("eu_2025_filtered.csv").replace(b"24 Bo&ouml;", b"24 Bo\xf6", 1)
    error = refused(data, "latin1.csv")
    assert "not UTF-8" in error.reason


@pytest.mark.parametrize("data", [b"", b"\n\n", b"  \r\n"])
def test_empty(data: bytes) -> None:
    assert "empty" in refused(data, "empty.csv").reason


def test_wrong_header() -> None:
    # The first lines of NASA's column-mapping table: a CSV, but no catalogue.
    error = refused(fixture("wrong_header.csv"), "wrong_header.csv")
    assert "neither" in error.reason


def test_comment_block_without_header() -> None:
    error = refused(fixture("nasa_comments_only.csv"), "nasa_comments_only.csv")
    assert "no header" in error.reason


def test_header_without_rows() -> None:
    header = fixture("eu_2023_allstatus.csv").split(b"\n", 1)[0] + b"\n"
    assert "no data rows" in refused(header, "header_only.csv").reason


def test_truncated_mid_row() -> None:
    # The last row stops after 200 bytes, with fewer fields than the header and no newline.
    error = refused(fixture("eu_truncated.csv"), "eu_truncated.csv")
    assert "truncated" in error.reason
    assert "line 6" in error.reason


def test_truncated_inside_a_quoted_field() -> None:
    error = refused(fixture("eu_unterminated_quote.csv"), "eu_unterminated_quote.csv")
    assert "truncated" in error.reason
    assert "line 5" in error.reason


NASA_FIXTURES = ["nasa_pscomppars_web.csv", "nasa_pscomppars_tap.csv", "nasa_ps_web.csv"]
EU_FIXTURES = ["eu_2022_hashheader_crlf.csv", "eu_2023_allstatus.csv", "eu_2025_filtered.csv"]
READERS = {Source.NASA: read_nasa, Source.EU: read_eu}
FLAGS = {Source.NASA: "--nasa", Source.EU: "--eu"}


@pytest.mark.parametrize(
    ("name", "found", "given"),
    [(n, Source.NASA, Source.EU) for n in NASA_FIXTURES]
    + [(n, Source.EU, Source.NASA) for n in EU_FIXTURES],
)
def test_the_reader_for_the_other_source_says_which_flag_takes_the_file(
    name: str, found: Source, given: Source
) -> None:
    what = {Source.NASA: "a NASA Exoplanet Archive table", Source.EU: "an exoplanet.eu export"}
    expected = f"{name}: {what[found]}, not {what[given]}: pass it with {FLAGS[found]}"
    for refuse in (
        lambda: READERS[given](fixture(name), name),
        lambda: read_source(fixture(name), name, given),
        lambda: check_source(fixture(name), name, given),
    ):
        with pytest.raises(WrongCatalogueError) as caught:
            refuse()
        assert str(caught.value) == expected
        assert caught.value.file == name
    check_source(fixture(name), name, found)  # and the right flag takes it


@pytest.mark.parametrize("given", list(Source))
def test_a_table_of_neither_catalogue_is_refused_by_both_readers(given: Source) -> None:
    for refuse in (
        lambda: READERS[given](fixture("wrong_header.csv"), "wrong_header.csv"),
        lambda: check_source(fixture("wrong_header.csv"), "wrong_header.csv", given),
    ):
        with pytest.raises(NotACatalogueError) as caught:
            refuse()
        assert not isinstance(caught.value, WrongCatalogueError)
        assert str(caught.value) == (
            "wrong_header.csv: not a catalogue: the header (,,,,...) is neither a NASA "
            "Exoplanet Archive table (pl_name) nor an exoplanet.eu export (name, planet_status)"
        )


@pytest.mark.realdata
def test_every_real_download_is_identified_as_what_it_is() -> None:
    require_shared_data()
    for path in sorted(SHARED_DATA.glob("*.csv")):
        data = path.read_bytes()
        if path.name.startswith("Exoplanet_Archive_Column_Mapping"):
            with pytest.raises(NotACatalogueError):
                sniff_source(data, path.name)
            continue
        source = Source.EU if path.name.startswith("exoplanet.eu") else Source.NASA
        other = Source.EU if source is Source.NASA else Source.NASA
        assert sniff_source(data, path.name) is source
        with pytest.raises(WrongCatalogueError, match=f"pass it with {FLAGS[source]}$"):
            check_source(data, path.name, other)


def test_duplicate_column() -> None:
    data = fixture("nasa_pscomppars_tap.csv").replace(b",sy_snum,", b",pl_orbper,", 1)
    assert "twice" in refused(data, "twice.csv").reason


def test_every_row_malformed() -> None:
    lines = fixture("nasa_pscomppars_tap.csv").split(b"\n")
    data = b"\n".join([lines[0], *(line + b",1" for line in lines[1:4])]) + b"\n"
    assert "none of the 3 rows" in refused(data, "shifted.csv").reason


def test_read_catalogue_file_names_the_file() -> None:
    with pytest.raises(NotACatalogueError) as caught:
        read_catalogue_file(FIXTURES / "binary_garbage.csv")
    assert caught.value.file == "binary_garbage.csv"


# --- bad rows are reported and skipped ---------------------------------------------------------


def rejects(catalogue: Catalogue) -> list[tuple[int, str | None]]:
    return [(reject.row, reject.column) for reject in catalogue.rejected]


def test_nasa_bad_rows() -> None:
    catalogue = read_nasa(fixture("nasa_bad_rows.csv"), "nasa_bad_rows.csv")
    assert catalogue.rows == 7
    assert [(record.row, record.name) for record in catalogue.records] == [
        (90, "11 Com b"),
        (92, "2MASS J19383260+4603591 b"),
    ]
    assert rejects(catalogue) == [
        (91, "disc_year"),
        (93, "pl_name"),
        (94, None),
        (95, "pl_orbperlim"),
        (96, "rastr"),
    ]
    reasons = [reject.reason for reject in catalogue.rejected]
    assert reasons[0] == "not a number: 'two thousand'"
    assert reasons[1] == "no planet name"
    assert reasons[2] == "83 fields where the header has 84"
    assert "limit flag" in reasons[3]
    assert "right ascension" in reasons[4]
    assert {reject.file for reject in catalogue.rejected} == {"nasa_bad_rows.csv"}


def test_eu_bad_rows() -> None:
    catalogue = read_eu(fixture("eu_bad_rows.csv"), "eu_bad_rows.csv")
    assert (catalogue.rows, catalogue.skipped_status) == (5, 1)
    assert [record.row for record in catalogue.records] == [2]
    assert catalogue.rejected == [
        RejectedRow(
            file="eu_bad_rows.csv",
            row=3,
            column="updated",
            reason="not a YYYY-MM-DD date: '2018-06-31'",
        ),
        RejectedRow(file="eu_bad_rows.csv", row=5, reason="99 fields where the header has 98"),
        RejectedRow(file="eu_bad_rows.csv", row=6, column="mass", reason="not a number: '~0.91'"),
    ]


def test_bad_cell_of_a_skipped_status_is_not_reported() -> None:
    # Line 4 is a Candidate with mass "heavy": it is skipped for its status, never read.
    catalogue = read_eu(fixture("eu_bad_rows.csv"), "eu_bad_rows.csv")
    assert 4 not in [reject.row for reject in catalogue.rejected]


def test_crlf_rows_keep_their_line_numbers() -> None:
    lf = fixture("eu_bad_rows.csv")
    crlf = lf.replace(b"\n", b"\r\n")
    first, second = read_eu(lf, "f.csv"), read_eu(crlf, "f.csv")
    assert rejects(first) == rejects(second)
    assert [record.row for record in first.records] == [record.row for record in second.records]


def test_missing_eu_planet_name() -> None:
    data = fixture("eu_2025_filtered.csv").replace(b"\n109 Psc b,", b"\n,", 1)
    catalogue = read_eu(data, "noname.csv")
    assert rejects(catalogue) == [(2, "name")]
    assert len(catalogue.records) == 16


def test_position_out_of_range() -> None:
    data = fixture("eu_2025_filtered.csv").replace(b",26.2326,20.08315,", b",26.2326,95.0,", 1)
    catalogue = read_eu(data, "dec.csv")
    assert rejects(catalogue) == [(2, "dec")]


def test_counts_add_up() -> None:
    for name, reader in [("nasa_bad_rows.csv", read_nasa), ("eu_bad_rows.csv", read_eu)]:
        catalogue = reader(fixture(name), name)
        total = len(catalogue.records) + len(catalogue.rejected) + catalogue.skipped_status
        assert total == catalogue.rows


# --- the full data set ----------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name", ["Exoplanet_Archive_Column_Mapping.csv", "oec-snapshot-2026-08-22.tar.gz", "README.md"]
)
def test_shared_files_that_are_no_catalogue(name: str) -> None:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not there: the full data set lives in ../shared/data")
    with pytest.raises(NotACatalogueError) as caught:
        read_catalogue_file(path)
    assert caught.value.file == name


def test_line_numbers_survive_a_newline_inside_quotes() -> None:
    original = fixture("eu_2023_allstatus.csv")
    data = original.replace(b"1RXS J1609b, ", b"1RXS J1609b,\n", 1)
    assert data.count(b"\n") == original.count(b"\n") + 1
    before, after = read_eu(original, "a.csv"), read_eu(data, "b.csv")
    assert after.rejected == []
    shifted = {record.name: record.row for record in after.records}
    for record in before.records:
        assert shifted[record.name] == record.row + (1 if record.row > 4 else 0)
    assert next(r for r in after.records if r.name == "1RXS 1609 b").aliases[:2] == [
        "1RXS J160929.1-210524 b",
        "1RXS J1609b",
    ]


def test_blank_lines_are_not_rows() -> None:
    data = fixture("nasa_pscomppars_tap.csv").replace(b"\n", b"\n\n", 3)
    catalogue = read_nasa(data, "blank.csv")
    assert (catalogue.rows, catalogue.rejected) == (12, [])
    assert catalogue.records[0].row == 3
