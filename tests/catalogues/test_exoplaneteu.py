"""exoplanet.eu reader, on real rows cut from three generations of its CSV export.

Fixture line numbers are lines of the fixture files (tests/fixtures/catalogues/cut.py maps
them back to the full exports). Expected values were read off the raw rows.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from common.catalogues import read_catalogue, read_catalogue_file, sniff_source
from common.catalogues.exoplaneteu import clean_name, designations, read_eu
from common.catalogues.fields import degrees_text, hours_text, planet_letter
from common.catalogues.methods import OEC_METHODS, oec_method
from common.records import Catalogue, PlanetRecord, Source, Value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "catalogues"
PRACTICE = FIXTURES.parent / "practice"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

EU_2022 = "eu_2022_hashheader_crlf.csv"  # "# name" header, CRLF, mass_detection_type
EU_2023 = "eu_2023_allstatus.csv"  # "name" header, LF, mass_detection_type
EU_2025 = "eu_2025_filtered.csv"  # "name" header, LF, mass_measurement_type

ALL_STATUSES = frozenset({"Confirmed", "Controversial", "Retracted"})


def read(name: str, statuses: frozenset[str] = frozenset({"Confirmed"})) -> Catalogue:
    return read_eu((FIXTURES / name).read_bytes(), name, statuses)


def planet(catalogue: Catalogue, name: str) -> PlanetRecord:
    (record,) = [record for record in catalogue.records if record.name == name]
    return record


@pytest.fixture(scope="module")
def eu2022() -> Catalogue:
    return read(EU_2022)


@pytest.fixture(scope="module")
def eu2023() -> Catalogue:
    return read(EU_2023)


@pytest.fixture(scope="module")
def eu2025() -> Catalogue:
    return read(EU_2025)


# --- header generations and line endings ----------------------------------------------------


def test_hash_header_with_crlf(eu2022: Catalogue) -> None:
    raw = (FIXTURES / EU_2022).read_bytes()
    assert raw.startswith(b"# name,planet_status,") and b"\r\n" in raw
    assert eu2022.source is Source.EU
    assert (eu2022.rows, len(eu2022.records), eu2022.skipped_status) == (22, 19, 3)
    assert eu2022.rejected == []
    record = planet(eu2022, "11 Com b")
    assert record.row == 2
    assert record.planet["period"] == Value(value="326.03", errorplus="0.32", errorminus="0.32")
    assert record.star["spectraltype"] == Value(value="G8 III")  # no stray "\r"


def test_mass_detection_type_header(eu2023: Catalogue) -> None:
    assert b",mass_detection_type," in (FIXTURES / EU_2023).read_bytes()
    assert (eu2023.rows, len(eu2023.records), eu2023.skipped_status) == (18, 14, 4)
    assert eu2023.rejected == []


def test_mass_measurement_type_header(eu2025: Catalogue) -> None:
    assert b",mass_measurement_type," in (FIXTURES / EU_2025).read_bytes()
    assert (eu2025.rows, len(eu2025.records), eu2025.skipped_status) == (17, 17, 0)
    assert eu2025.rejected == []


@pytest.mark.parametrize("name", [EU_2022, EU_2023, EU_2025])
def test_rows_are_the_lines_an_editor_shows(name: str) -> None:
    lines = (FIXTURES / name).read_bytes().decode().split("\n")
    for record in read(name).records:
        assert lines[record.row - 1].startswith(_raw_name(record.name))


def _raw_name(name: str) -> str:
    return name.replace("ö", "&ouml;")


@pytest.mark.parametrize("name", [EU_2022, EU_2023, EU_2025])
def test_sniffed_as_exoplanet_eu(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    assert sniff_source(data, name) is Source.EU
    assert read_catalogue(data, name).records == read_eu(data, name).records


def test_read_catalogue_file() -> None:
    catalogue = read_catalogue_file(FIXTURES / EU_2025)
    assert catalogue.file == EU_2025
    assert catalogue.released is None  # exoplanet.eu exports carry no date of their own


# --- statuses --------------------------------------------------------------------------------


def test_only_confirmed_on_request(eu2022: Catalogue) -> None:
    names = {record.name for record in eu2022.records}
    assert {"11 Uma b", "30 Ari B b", "42 Dra b"}.isdisjoint(names)  # Candidate, Retr., Contr.
    assert {record.status for record in eu2022.records} == {"Confirmed planets"}


def test_confirmed_and_controversial_by_default() -> None:
    # A run reads Controversial rows as it reads NASA's flagged ones (rules.merge decides).
    catalogue = read_eu((FIXTURES / EU_2022).read_bytes(), EU_2022)
    assert (len(catalogue.records), catalogue.skipped_status) == (20, 2)  # Candidate, Retracted
    assert planet(catalogue, "42 Dra b").status == "Controversial"


def test_other_statuses_on_request() -> None:
    catalogue = read(EU_2022, ALL_STATUSES)
    assert (len(catalogue.records), catalogue.skipped_status) == (21, 1)  # 11 Uma b: Candidate
    assert planet(catalogue, "30 Ari B b").status == "Retracted planet candidate"
    assert planet(catalogue, "42 Dra b").status == "Controversial"


def test_candidates_are_refused_at_call_time() -> None:
    data = (FIXTURES / EU_2023).read_bytes()
    with pytest.raises(ValueError, match="Candidate"):
        read_eu(data, EU_2023, frozenset({"Confirmed", "Candidate"}))
    with pytest.raises(ValueError, match="unknown"):
        read_eu(data, EU_2023, frozenset({"Published"}))


# --- values ---------------------------------------------------------------------------------


def test_mass_sini_only_is_msini(eu2022: Catalogue, eu2025: Catalogue) -> None:
    # 2022 11 Com b: mass empty, mass_sini 16.1284 +-1.5.
    assert planet(eu2022, "11 Com b").planet["mass"] == Value(
        value="16.1284", errorplus="1.5", errorminus="1.5", type="msini"
    )
    # 2025 112 Psc b: mass empty (but mass errors 0.005/0.004), mass_sini 0.033 -0.005 +0.004.
    assert planet(eu2025, "112 Psc b").planet["mass"] == Value(
        value="0.033", errorplus="0.004", errorminus="0.005", type="msini"
    )


def test_mass_copied_from_mass_sini_is_msini(eu2023: Catalogue, eu2025: Catalogue) -> None:
    # 2023 11 Com b: mass = mass_sini = 16.1284, no inclination, found by RV.
    assert planet(eu2023, "11 Com b").planet["mass"] == Value(
        value="16.1284", errorplus="1.53491", errorminus="1.53491", type="msini"
    )
    assert planet(eu2023, "24 Boo b").planet["mass"].type == "msini"


def test_true_masses(eu2022: Catalogue, eu2023: Catalogue, eu2025: Catalogue) -> None:
    # 55 Cnc b: mass = mass_sini = 0.84 but inclination 89.73: a true mass.
    assert planet(eu2022, "55 Cnc b").planet["mass"] == Value(
        value="0.84", errorplus="0.23", errorminus="0.031"
    )
    assert planet(eu2023, "55 Cnc b").planet["mass"].type is None
    # 109 Psc b: mass 5.743 -0.289 +1.011 differs from mass_sini 6.383.
    assert planet(eu2025, "109 Psc b").planet["mass"] == Value(
        value="5.743", errorplus="1.011", errorminus="0.289"
    )
    # Kepler-131 c: mass = mass_sini, no inclination, but it transits.
    assert planet(eu2025, "Kepler-131 c").planet["mass"].type is None


def test_inf_and_nan_errors_drop_the_pair(
    eu2022: Catalogue, eu2023: Catalogue, eu2025: Catalogue
) -> None:
    # CD Cet b: mass 0.01244, error_min 0.00136, error_max inf.
    assert planet(eu2025, "CD Cet b").planet["mass"] == Value(value="0.01244")
    # CoRoT-24 b: error_min inf, error_max nan (2022) / inf, inf (2023).
    assert planet(eu2022, "CoRoT-24 b").planet["mass"] == Value(value="0.018")
    assert planet(eu2023, "CoRoT-24 b").planet["mass"] == Value(value="0.018")
    # GJ 143 c: nan, nan.
    assert planet(eu2023, "GJ 143 c").planet["mass"] == Value(value="0.01164")


def test_zero_error_drops_the_pair(eu2022: Catalogue) -> None:
    # Kepler-1520 b: mass 6.3e-05 with mass_error_min 0.0; the exponent is kept.
    assert planet(eu2022, "Kepler-1520 b").planet["mass"] == Value(value="6.3e-05")


def test_none_means_missing() -> None:
    # README: exoplanet.eu also writes a literal None; this export has none, so plant one.
    original = (FIXTURES / EU_2025).read_bytes()
    data = original.replace(b"0.01244,0.00136,inf,", b"0.01244,None,None,", 1)
    assert data != original
    catalogue = read_eu(data, EU_2025)
    assert catalogue.rejected == []
    assert planet(catalogue, "CD Cet b").planet["mass"] == Value(value="0.01244")


def test_negative_error_min_is_made_positive(eu2022: Catalogue, eu2025: Catalogue) -> None:
    # 2MASS J0122 b: star_age 0.12, error_min -0.01, error_max 0.01.
    assert planet(eu2022, "2MASS J01225093-2439505 b").star["age"] == Value(
        value="0.12", errorplus="0.01", errorminus="0.01"
    )
    # GJ 15A b: omega 60.0, error_min -20.0, error_max 110.0.
    assert planet(eu2022, "GJ 15A b").planet["periastron"] == Value(
        value="60", errorplus="110", errorminus="20"
    )
    # HAT-P-4 b: star_age 4.2 with both errors -0.6.
    assert planet(eu2025, "HAT-P-4 b").star["age"] == Value(
        value="4.2", errorplus="0.6", errorminus="0.6"
    )


def test_exponents_are_kept(eu2025: Catalogue) -> None:
    # 51 Peg b: orbital_period 4.2308 +-3.72905e-05.
    assert planet(eu2025, "51 Peg b").planet["period"] == Value(
        value="4.2308", errorplus="3.72905e-05", errorminus="3.72905e-05"
    )


def test_transit_time_in_bjd(eu2025: Catalogue) -> None:
    # HAT-P-4 b: tzero_tr 2454502.56227 +-0.00021.
    assert planet(eu2025, "HAT-P-4 b").planet["transittime"] == Value(
        value="2454502.56227", errorplus="0.00021", errorminus="0.00021", unit="BJD"
    )


def test_transit_time_that_is_no_julian_date_is_left_out(
    eu2022: Catalogue, eu2025: Catalogue
) -> None:
    assert "transittime" not in planet(eu2022, "HAT-P-63 b").planet  # 1456382.94256
    assert "transittime" not in planet(eu2025, "GJ 238 b").planet  # 245826.98222


def test_star_system_and_dates(eu2022: Catalogue) -> None:
    record = planet(eu2022, "11 Com b")
    assert record.star["mass"] == Value(value="2.7", errorplus="0.3", errorminus="0.3")
    assert record.star["metallicity"] == Value(value="-0.35", errorplus="0.09", errorminus="0.09")
    assert record.star["magV"] == Value(value="4.74")
    assert record.system["distance"] == Value(value="110.6", errorplus="10.5", errorminus="10.5")
    assert (record.ra, record.dec) == (185.1791667, 17.7927778)
    assert record.system["rightascension"] == Value(value="12 20 43.00")
    assert record.system["declination"] == Value(value="+17 47 34.0")
    assert (record.updated, record.dated_by) == (dt.date(2021, 10, 2), "exoplanet.eu updated")
    assert record.url == "https://exoplanet.eu/catalog/?q=11%20Com%20b"
    assert record.planet["discoveryyear"] == Value(value="2008")


def test_missing_discovery_year(eu2023: Catalogue) -> None:
    assert "discoveryyear" not in planet(eu2023, "1RXS J0342.5+1216 b").planet


@pytest.mark.parametrize(
    ("catalogue", "name", "method"),
    [
        (EU_2022, "11 Oph b", "imaging"),
        (EU_2022, "DE CVn b", "timing"),  # TTV
        (EU_2022, "DP Leo (AB) b", "timing"),  # Timing
        (EU_2022, "CoRoT-24 b", "transit"),  # Primary Transit
        (EU_2023, "HD 112570 b", "RV"),  # Radial Velocity, Astrometry
        (EU_2025, "AB Aur b", "imaging"),  # Imaging, Other, Kinematic
        (EU_2025, "HD 142 Ad", "RV"),  # Other, Radial Velocity
        (EU_2025, "HD 142666 b", "disk kinematics"),  # Kinematic
    ],
)
def test_discovery_method(catalogue: str, name: str, method: str) -> None:
    assert planet(read(catalogue), name).planet["discoverymethod"] == Value(value=method)


@pytest.mark.parametrize(
    ("catalogue", "name"),
    [(EU_2022, "ASASSN-16kr b"), (EU_2023, "ASASSN-16kr b"), (EU_2025, "BD+20 274 b")],
)
def test_method_without_an_oec_word_is_left_out(catalogue: str, name: str) -> None:
    assert "discoverymethod" not in planet(read(catalogue), name).planet  # Default, Other


# --- names -----------------------------------------------------------------------------------


def test_html_entities(eu2023: Catalogue) -> None:
    assert planet(eu2023, "24 Boo b").host == "24 Boö"  # "24 Bo&ouml;"
    record = planet(eu2023, "tau Boo A b")
    assert (record.host, record.host_aliases, record.aliases) == (
        "tau Boö A",
        ["tau Boö"],
        ["tau Boö b"],
    )


def test_markup_in_names(eu2022: Catalogue) -> None:
    # HD 16417 b: alternate_names "Fornacis &lambda;<sup>2</sup>  b".
    assert planet(eu2022, "HD 16417 b").aliases == ["Fornacis λ2 b"]


def test_alternate_name_lists(eu2022: Catalogue, eu2023: Catalogue) -> None:
    record = planet(eu2023, "1RXS 1609 b")
    assert record.aliases == [
        "1RXS J160929.1-210524 b",
        "1RXS J1609b",
        "1RXS J1609-2105b",
        "RXJ 1609",
    ]
    assert record.host_aliases == ["1RXS1609", "1RXS J1609", "1RXS J160929"]
    assert planet(eu2022, "11 Oph b").host_aliases == ["Oph 1622-2405", "Oph 11A"]


def test_planet_alias_naming_the_host_is_dropped(eu2025: Catalogue) -> None:
    # CD Cet b: alternate_names "GJ 1057", which is also its star's alternate name.
    record = planet(eu2025, "CD Cet b")
    assert (record.aliases, record.host_aliases) == ([], ["GJ 1057"])


def test_empty_star_name_gives_no_host(eu2022: Catalogue, eu2023: Catalogue) -> None:
    for catalogue in (eu2022, eu2023):
        record = planet(catalogue, "2M0045+16")
        assert (record.host, record.host_aliases, record.letter) == (None, [], None)


def test_apostrophes(eu2022: Catalogue, eu2025: Catalogue) -> None:
    record = planet(eu2025, "Barnard's star b")
    assert (record.host, record.host_aliases) == ("Barnard's star", ["GJ 699", "V2500 Oph"])
    assert record.url == "https://exoplanet.eu/catalog/?q=Barnard%27s%20star%20b"
    assert planet(eu2022, "1I/'Oumuamua").aliases == ["1I/2017_U1", "'Oumuamua"]


def test_k2_166(eu2025: Catalogue) -> None:
    record = planet(eu2025, "K2-166 b")
    assert "EPIC 201615463 b" in record.aliases
    assert "EPIC 201615463" in record.host_aliases


@pytest.mark.parametrize(
    ("name", "letter"),
    [
        ("11 Com b", "b"),
        ("tau Boo Ab", "b"),
        ("CRTS J071126.0+440405 (AB)b", "b"),
        ("EPIC 201170410.02", None),
        ("2M0045+16", None),
        ("", None),
    ],
)
def test_planet_letter(name: str, letter: str | None) -> None:
    assert planet_letter(name) == letter


def test_clean_name() -> None:
    assert clean_name("24 Bo&ouml;") == "24 Boö"
    assert clean_name(" Fornacis &lambda;<sup>2</sup>  b ") == "Fornacis λ2 b"
    assert clean_name("OGLE--2018-BLG-0516 b") == "OGLE-2018-BLG-0516 b"  # 2022-04's typo


# --- coordinates and methods ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("degrees", "text"),
    [
        (185.1791667, "12 20 43.00"),
        (0.0, "00 00 00.00"),
        (359.99999999, "00 00 00.00"),  # rounds into the next day, not "24 00 00.00"
        (26.2326, "01 44 55.82"),
    ],
)
def test_hours_text(degrees: float, text: str) -> None:
    assert hours_text(degrees) == text


@pytest.mark.parametrize(
    ("degrees", "text"),
    [
        (17.7927778, "+17 47 34.0"),
        (-24.0872222, "-24 05 14.0"),
        (-0.00001, "+00 00 00.0"),
        (-89.99999999, "-90 00 00.0"),
        (20.08315, "+20 04 59.3"),
    ],
)
def test_degrees_text(degrees: float, text: str) -> None:
    assert degrees_text(degrees) == text


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("Primary Transit", "transit"),
        ("Radial Velocity, Astrometry", "RV"),
        ("Other, Radial Velocity", "RV"),
        ("Kinematic", "disk kinematics"),
        ("Disk Kinematics", "disk kinematics"),
        ("TTV", "timing"),
        ("Eclipse Timing Variations", "timing"),
        ("Orbital Brightness Modulation", "transit"),
        ("Other", None),
        ("Default", None),
        ("", None),
    ],
)
def test_oec_method(text: str, method: str | None) -> None:
    assert oec_method(text) == method
    assert method is None or method in OEC_METHODS


# --- the full exports -----------------------------------------------------------------------


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not there: the full data set lives in ../shared/data")
    return path


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "rows", "confirmed"),
    [  # Confirmed and Controversial rows (5003 + 35, 5558 + 48)
        ("exoplanet.eu_catalog_2022-04_allstatus_hashheader_CRLF.csv", 7716, 5038),
        ("exoplanet.eu_catalog_2023-12_allstatus.csv", 8419, 5606),
        ("exoplanet.eu_catalog_2025-05_filtered.csv", 5973, 5973),
    ],
)
def test_full_export(name: str, rows: int, confirmed: int) -> None:
    path = shared(name)
    started = time.perf_counter()
    catalogue = read_catalogue_file(path)
    seconds = time.perf_counter() - started
    assert catalogue.source is Source.EU
    assert (catalogue.rows, len(catalogue.records)) == (rows, confirmed)
    assert (catalogue.skipped_status, catalogue.rejected) == (rows - confirmed, [])
    assert seconds < 10  # generous: the budget is well under a second on an idle machine


@pytest.mark.realdata
def test_full_2023_export_by_status() -> None:
    data = shared("exoplanet.eu_catalog_2023-12_allstatus.csv").read_bytes()
    catalogue = read_eu(data, "2023-12", ALL_STATUSES)
    statuses = [record.status for record in catalogue.records]
    assert statuses.count("Confirmed planets") == 5558
    assert statuses.count("Controversial") == 48
    assert statuses.count("Retracted planet candidate") == 53
    assert catalogue.skipped_status == 2760  # Candidates
    assert planet(catalogue, "24 Boo b").row == 26


# --- names that hold several designations (tests/fixtures/practice, exoplanet.eu 2022-04) ----


def test_joined_designations_are_a_name_and_aliases() -> None:
    catalogue = read_catalogue_file(PRACTICE / "eu.csv")
    mascara = planet(catalogue, "TOI-1431 b")  # "TOI-1431 b/MASCARA-5 b", star "TOI-1431/..."
    assert (mascara.aliases, mascara.host) == (["MASCARA-5 b", "HD 201033 b"], "TOI-1431")
    assert mascara.host_aliases == ["MASCARA-5", "HD 201033"]
    # The letter written once at the end belongs to every event of the lens.
    ogle = planet(catalogue, "OGLE-2018-BLG-0932 b")
    assert (ogle.aliases, ogle.letter) == (["KMT-2018-BLG-2087 b", "MOA-2018-BLG-163 b"], "b")
    assert ogle.host_aliases == ["KMT-2018-BLG-2087", "MOA-2018-BLG-163"]
    assert planet(catalogue, "OGLE-2018-BLG-0516 b").host == "OGLE-2018-BLG-0516"


def test_a_comet_designation_is_one_name() -> None:
    assert designations("1I/'Oumuamua") == ["1I/'Oumuamua"]
    assert designations("C/2019 Q4 (Borisov)") == ["C/2019 Q4 (Borisov)"]
    assert designations("TOI-1431/MASCARA-5") == ["TOI-1431", "MASCARA-5"]
