"""NASA Exoplanet Archive reader, on real rows cut from the archive's downloads.

Fixture line numbers are lines of the fixture files (tests/fixtures/catalogues/cut.py maps
them back to the full downloads). Expected values were read off the raw rows.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from common.catalogues import read_catalogue, read_catalogue_file, sniff_source
from common.catalogues.nasa import M_JUP_IN_EARTH, R_JUP_IN_EARTH, read_nasa
from common.records import Catalogue, PlanetRecord, Source, Value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "catalogues"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

WEB = "nasa_pscomppars_web.csv"
TAP = "nasa_pscomppars_tap.csv"
PS = "nasa_ps_web.csv"


def read(name: str, fetched_at: dt.date | None = None) -> Catalogue:
    return read_nasa((FIXTURES / name).read_bytes(), name, fetched_at)


def planet(catalogue: Catalogue, name: str) -> PlanetRecord:
    (record,) = [record for record in catalogue.records if record.name == name]
    return record


@pytest.fixture(scope="module")
def web() -> Catalogue:
    return read(WEB)


@pytest.fixture(scope="module")
def tap() -> Catalogue:
    return read(TAP)


# --- the web download of pscomppars -------------------------------------------------------


def test_web_download_counts(web: Catalogue) -> None:
    assert web.source is Source.NASA
    assert web.file == WEB
    assert (web.rows, len(web.records), web.rejected, web.skipped_status) == (25, 25, [], 0)


def test_row_is_the_line_an_editor_shows(web: Catalogue) -> None:
    # 88 comment lines and the header come first: the first planet is on line 90.
    assert [record.row for record in web.records[:3]] == [90, 91, 92]
    lines = (FIXTURES / WEB).read_text().splitlines()
    for record in web.records:
        assert lines[record.row - 1].startswith(record.name + ",")


def test_11_com_b(web: Catalogue) -> None:
    record = planet(web, "11 Com b")
    assert record.row == 90
    assert (record.host, record.letter, record.status) == ("11 Com", "b", "Confirmed planets")
    assert record.planet["period"] == Value(value="323.21", errorplus="0.06", errorminus="0.05")
    assert record.planet["mass"] == Value(
        value="15.464", errorplus="0.123", errorminus="0.125", type="msini"
    )
    # pscomppars gives 1.09 R_J without uncertainties: a mass-radius model for an RV planet.
    assert "radius" not in record.planet
    assert record.planet["eccentricity"] == Value(
        value="0.238", errorplus="0.007", errorminus="0.007"
    )
    assert record.planet["discoverymethod"] == Value(value="RV")
    assert record.planet["discoveryyear"] == Value(value="2007")
    assert record.star["temperature"] == Value(value="4874")
    assert record.star["metallicity"] == Value(value="-0.26", errorplus="0.1", errorminus="0.1")
    assert record.star["spectraltype"] == Value(value="G8 III")
    assert record.star["magV"] == Value(value="4.72307", errorplus="0.023", errorminus="0.023")
    assert record.system["distance"] == Value(
        value="93.1846", errorplus="1.9238", errorminus="1.9238"
    )
    assert record.url == "https://exoplanetarchive.ipac.caltech.edu/overview/11%20Com"


def test_zero_errors_are_dropped_as_a_pair(web: Catalogue) -> None:
    # pl_orbsmax 1.178000 with err1 0.000000 and err2 0.000000: OEC refuses zero errors.
    assert planet(web, "11 Com b").planet["semimajoraxis"] == Value(value="1.178")


def test_position_keeps_nasa_sexagesimal(web: Catalogue) -> None:
    record = planet(web, "11 Com b")
    assert record.system["rightascension"] == Value(value="12 20 42.91")
    assert record.system["declination"] == Value(value="+17 47 35.71")
    assert (record.ra, record.dec) == (185.1787793, 17.7932516)


def test_catalogue_date_comes_from_the_comment_block(web: Catalogue) -> None:
    # "# Tue Oct 15 09:13:04 2024"; pscomppars has no per-row date.
    assert web.released == dt.date(2024, 10, 15)
    record = planet(web, "11 Com b")
    assert (record.updated, record.dated_by) == (dt.date(2024, 10, 15), "NASA catalogue date")


def test_the_download_date_beats_fetched_at() -> None:
    catalogue = read(WEB, fetched_at=dt.date(2030, 1, 1))
    assert catalogue.released == dt.date(2024, 10, 15)


def test_upper_limit(web: Catalogue) -> None:
    # CoRoT-24 b: pl_bmassj 0.01800, pl_bmassjlim 1, provenance Mass.
    assert planet(web, "CoRoT-24 b").planet["mass"] == Value(upperlimit="0.018")
    # Barnard b: pl_orbeccen 0.160000, pl_orbeccenlim 1.
    assert planet(web, "Barnard b").planet["eccentricity"] == Value(upperlimit="0.16")
    # PSR J1719-1438 b: st_teff 4500.00, st_tefflim 1.
    assert planet(web, "PSR J1719-1438 b").star["temperature"] == Value(upperlimit="4500")


def test_lower_limit_drops_the_errors(web: Catalogue) -> None:
    # HD 202696 b: pl_bmassj 1.99600 +0.22 -0.10, pl_bmassjlim -1.
    assert planet(web, "HD 202696 b").planet["mass"] == Value(lowerlimit="1.996")
    # TOI-2081 b: st_met -0.500, st_metlim -1.
    assert planet(web, "TOI-2081 b").star["metallicity"] == Value(lowerlimit="-0.5")


def test_limits_on_one_planet(web: Catalogue) -> None:
    # HD 191939 f: pl_orbper 2200 lim -1, pl_eqt 125 lim 1, pl_bmassj 2.07659 lim 0 (Msini).
    record = planet(web, "HD 191939 f")
    assert record.planet["period"] == Value(lowerlimit="2200")
    assert record.planet["temperature"] == Value(upperlimit="125")
    assert record.planet["mass"] == Value(value="2.07659", type="msini")


def test_mass_provenance(web: Catalogue) -> None:
    # Msin(i)/sin(i) is a true mass; Mass too; M-R relationship is a model and left out.
    assert planet(web, "7 CMa b").planet["mass"] == Value(
        value="1.85", errorplus="0.06", errorminus="0.06"
    )
    assert planet(web, "CoRoT-20 b").planet["mass"].type is None
    assert "mass" not in planet(web, "EPIC 201170410.02").planet
    assert "mass" not in planet(web, "K2-253 b").planet  # no mass at all


def test_radius_from_earth_units_when_jupiter_column_is_empty(web: Catalogue) -> None:
    # Kepler-37 e: pl_radj empty, pl_rade 0.370 +0.180 -0.180 (Earth radii).
    assert round(0.37 / R_JUP_IN_EARTH, 4) == 0.0330
    assert planet(web, "Kepler-37 e").planet["radius"] == Value(
        value="0.033", errorplus="0.016", errorminus="0.016"
    )


def test_metallicity_only_when_fe_h(web: Catalogue) -> None:
    assert "metallicity" not in planet(web, "47 UMa b").star  # st_metratio [M/H]
    # CoRoT-20: st_met 0.140 +0.120 -0.120 with an empty st_metratio
    assert planet(web, "CoRoT-20 b").star["metallicity"] == Value(
        value="0.14", errorplus="0.12", errorminus="0.12"
    )


def test_controversial(web: Catalogue) -> None:
    assert planet(web, "BD-06 1339 b").status == "Controversial"
    assert planet(web, "KIC 10001893 b").status == "Controversial"


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("11 Com b", "RV"),
        ("1RXS J160929.1-210524 b", "imaging"),
        ("2MASS J19383260+4603591 b", "timing"),  # Eclipse Timing Variations
        ("AU Mic d", "timing"),  # Transit Timing Variations
        ("DENIS-P J082303.1-491201 b", "astrometry"),
        ("EPIC 201615463 c", "transit"),
        ("Gaia22dkvL b", "microlensing"),
        ("HD 97048 b", "disk kinematics"),
        ("KIC 7917485 b", "timing"),  # Pulsation Timing Variations
        ("M62H b", "timing"),  # Pulsar Timing
        ("KIC 10001893 b", "transit"),  # Orbital Brightness Modulation, as OEC files them
    ],
)
def test_discovery_method(web: Catalogue, name: str, method: str) -> None:
    assert planet(web, name).planet["discoverymethod"] == Value(value=method)


def test_a_planet_found_by_brightness_modulation_has_no_model_radius() -> None:
    # Filed as transit in OEC, but it does not transit: NASA's "1.19" is a model radius.
    path = FIXTURES.parent / "practice" / "nasa.csv"
    record = planet(read_nasa(path.read_bytes(), path.name), "KIC 10068024 b")
    assert record.planet["discoverymethod"] == Value(value="transit")
    assert "radius" not in record.planet


def test_planet_name_need_not_start_with_the_host(web: Catalogue) -> None:
    record = planet(web, "EPIC 201615463 c")
    assert (record.host, record.letter) == ("K2-166", "c")
    assert record.url == "https://exoplanetarchive.ipac.caltech.edu/overview/K2-166"


def test_apostrophes(web: Catalogue) -> None:
    record = planet(web, "Teegarden's Star b")
    assert record.host == "Teegarden's Star"
    assert record.url == "https://exoplanetarchive.ipac.caltech.edu/overview/Teegarden%27s%20Star"
    assert planet(web, "Barnard b").host == "Barnard's star"


def test_koi_style_names_have_no_letter(web: Catalogue) -> None:
    assert planet(web, "EPIC 201170410.02").letter is None


# --- the TAP download: quoted strings, Earth units only, no comments ------------------------


def test_tap_download(tap: Catalogue) -> None:
    assert (tap.rows, len(tap.records), tap.rejected, tap.skipped_status) == (12, 12, [], 0)
    assert tap.records[0].row == 2  # no comment block: the header is line 1
    assert tap.released is None


def test_tap_masses_and_radii_are_converted_from_earth_units(tap: Catalogue) -> None:
    # Kepler-1167 b: pl_bmasse 3.57000000, pl_rade 1.71000000.
    assert round(3.57 / M_JUP_IN_EARTH, 6) == 0.011232
    record = planet(tap, "Kepler-1167 b")
    assert record.planet["mass"] == Value(value="0.0112")
    assert record.planet["radius"] == Value(value="0.153")
    assert record.planet["period"] == Value(value="1.003933739")


def test_conversion_does_not_invent_precision(tap: Catalogue) -> None:
    # 11 Com b: pl_bmasse 4914.89848585 is NASA's own conversion of 15.46400 M_Jup.
    assert planet(tap, "11 Com b").planet["mass"] == Value(value="15.464")
    # ITG 15 b: pl_bmasse 6674.39654700 = 21 M_Jup.
    assert planet(tap, "ITG 15 b").planet["mass"] == Value(value="21")


def test_tap_quoted_strings_and_apostrophes(tap: Catalogue) -> None:
    barnard = [record for record in tap.records if record.host == "Barnard's star"]
    assert sorted(record.letter for record in barnard) == ["b", "c", "d", "e"]
    assert planet(tap, "EPIC 201615463 c").host == "K2-166"


def test_tap_position_from_degrees(tap: Catalogue) -> None:
    # Kepler-1167: ra 298.3026595, dec 47.6939654.
    record = planet(tap, "Kepler-1167 b")
    assert record.system["rightascension"] == Value(value="19 53 12.64")
    assert record.system["declination"] == Value(value="+47 41 38.3")
    assert record.system["distance"] == Value(value="820.905")


def test_tap_empty_cells(tap: Catalogue) -> None:
    assert "discoveryyear" not in planet(tap, "TOI-5789 c").planet
    assert "distance" not in planet(tap, "SPECULOOS-3 b").system
    assert "mass" not in planet(tap, "ITG 15 b").star
    assert "mass" not in planet(tap, "KOI-217 b").planet


def test_tap_rows_are_dated_by_the_caller() -> None:
    undated = read(TAP)
    assert {(record.updated, record.dated_by) for record in undated.records} == {(None, "")}
    dated = read(TAP, fetched_at=dt.date(2026, 2, 3))
    assert dated.released == dt.date(2026, 2, 3)
    assert {(record.updated, record.dated_by) for record in dated.records} == {
        (dt.date(2026, 2, 3), "download date")
    }


def test_columns_the_fixtures_lack() -> None:
    # A TAP query may ask for any column; these four downloads never did. The row is made up.
    data = (
        b"pl_name,hostname,hd_name,hip_name,pl_letter,pl_tranmid,pl_tranmiderr1,pl_tranmiderr2,"
        b"pl_orbincl,pl_orblper,st_age,st_ageerr1,st_ageerr2,sy_jmag,sy_hmag,sy_icmag,"
        b"pl_bmassj,pl_bmasse\n"
        b'"11 Com b","11 Com","HD 107383","HIP 60202","b",2455000.123,0.002,-0.003,'
        b"88.5,94.8,3.1,,,2.9,2.5,3.8,,4914.89848585\n"
        b'"X b","X","","","",245.5,,,,,,,,,,,,\n'
    )
    catalogue = read_nasa(data, "tap.csv")
    record = planet(catalogue, "11 Com b")
    assert record.host_aliases == ["HD 107383", "HIP 60202"]
    assert record.planet["transittime"] == Value(
        value="2455000.123", errorplus="0.002", errorminus="0.003", unit="BJD"
    )
    assert record.planet["inclination"] == Value(value="88.5")
    assert record.planet["periastron"] == Value(value="94.8")
    assert record.planet["mass"] == Value(value="15.464")  # pl_bmassj empty in this row
    assert record.star["age"] == Value(value="3.1")  # one-sided: no errors
    assert (record.star["magJ"], record.star["magH"], record.star["magI"]) == (
        Value(value="2.9"),
        Value(value="2.5"),
        Value(value="3.8"),
    )
    other = planet(catalogue, "X b")
    assert (other.host_aliases, other.letter) == ([], "b")
    assert "transittime" not in other.planet  # 245.5 is no Julian date


# --- the ps table: one row per reference ---------------------------------------------------


def test_ps_keeps_default_parameter_sets_only() -> None:
    catalogue = read(PS)
    assert (catalogue.rows, catalogue.skipped_status, catalogue.rejected) == (9, 6, [])
    assert [(record.name, record.row) for record in catalogue.records] == [
        ("11 Com b", 100),
        ("11 UMi b", 104),
        ("14 And b", 106),
    ]


def test_ps_rows_are_dated_by_rowupdate() -> None:
    catalogue = read(PS)
    record = planet(catalogue, "11 Com b")
    assert (record.updated, record.dated_by) == (dt.date(2023, 9, 19), "NASA rowupdate")
    assert catalogue.released == dt.date(2026, 3, 28)
    assert record.planet["period"] == Value(value="323.21", errorplus="0.06", errorminus="0.05")


# --- entry points ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [WEB, TAP, PS])
def test_sniffed_as_nasa(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    assert sniff_source(data, name) is Source.NASA
    assert read_catalogue(data, name).records == read_nasa(data, name).records


def test_read_catalogue_file_names_records_by_file_name() -> None:
    catalogue = read_catalogue_file(FIXTURES / TAP, fetched_at=dt.date(2026, 2, 3))
    assert catalogue.file == TAP
    assert {record.catalogue for record in catalogue.records} == {TAP}
    assert catalogue.released == dt.date(2026, 2, 3)


# --- the full downloads ---------------------------------------------------------------------


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not there: the full data set lives in ../shared/data")
    return path


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "rows", "records", "skipped", "released"),
    [
        ("PSCompPars_2024-10-15_webUI_defaultcols.csv", 5766, 5766, 0, dt.date(2024, 10, 15)),
        ("pscomppars_TAP_2026-02_16cols_quoted.csv", 6087, 6087, 0, None),
        ("PS_2026-03-28_webUI_sample.csv", 20, 4, 16, dt.date(2026, 3, 28)),
    ],
)
def test_full_download(
    name: str, rows: int, records: int, skipped: int, released: dt.date | None
) -> None:
    path = shared(name)
    started = time.perf_counter()
    catalogue = read_catalogue_file(path)
    seconds = time.perf_counter() - started
    assert (catalogue.rows, len(catalogue.records)) == (rows, records)
    assert (catalogue.skipped_status, catalogue.rejected) == (skipped, [])
    assert catalogue.released == released
    # generous: the budget is well under a second on an idle machine
    assert seconds < 10


@pytest.mark.realdata
def test_full_web_download_matches_the_fixture() -> None:
    full = read_catalogue_file(shared("PSCompPars_2024-10-15_webUI_defaultcols.csv"))
    assert planet(full, "11 Com b").planet == planet(read(WEB), "11 Com b").planet
    assert planet(full, "11 Com b").row == 90
    controversial = [record for record in full.records if record.status == "Controversial"]
    assert len(controversial) == 30
    model_masses = [record for record in full.records if "mass" not in record.planet]
    assert len(model_masses) == 2883 + 23  # M-R relationship, plus rows with no mass


def test_radius_without_errors_kept_only_for_transiting_planets(web: Catalogue) -> None:
    for record in web.records:
        radius = record.planet.get("radius")
        if radius is not None and radius.errorplus is None and radius.value is not None:
            assert record.planet["discoverymethod"].value == "transit", record.name
    transiting = [
        r for r in web.records if r.planet.get("discoverymethod") == Value(value="transit")
    ]
    assert any("radius" in r.planet for r in transiting)
