"""New system files: OEC's file name rule, safe names, and text that passes the validator."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path, PurePath

import pytest

from common.changes import NewPlanet
from common.errors import UnsafeNameError
from common.oec.edit import apply_patch
from common.oec.render import (
    constellation_of,
    constellations_of,
    render_new_system,
    sexagesimal,
    system_file_name,
)
from common.oec.tree import parse_system
from common.oec.validate import problems
from common.records import PlanetRecord, Source, Value
from runtime.memo import Memo
from tests.oec import fixture, fixture_files, snapshot_texts

TODAY = dt.date(2026, 8, 22)


def planet(name: str, host: str | None, **fields: Value) -> PlanetRecord:
    return PlanetRecord(
        source=Source.NASA,
        catalogue="pscomppars.csv",
        row=7,
        name=name,
        host=host,
        ra=185.18,
        dec=17.79,
        updated=dt.date(2026, 3, 28),
        planet={"discoverymethod": Value(value="RV"), **fields},
    )


# -- file names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("11 Com", "11 Com.xml"),
        ("Barnard's Star", "Barnards Star.xml"),
        ("Van Maanen's star", "Van Maanens star.xml"),
        ("2MASS J0249-0557 c", "2MASS J0249-0557 c.xml"),
        ("SDSS J1110+0116", "SDSS J1110+0116.xml"),
        ("PSO J318.5-22", "PSO J318.5-22.xml"),
        ("tau Boötis", "tau Boötis.xml"),
    ],
)
def test_file_name_is_the_name_without_apostrophes(name: str, file: str) -> None:
    assert system_file_name(name) == file


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        "a/b",
        "a\\b",
        "nul\x00byte",
        "new\nline",
        "tab\there",
        "bell\x07",
        "zero\u200bwidth",
        ".hidden",
        "-rf",
        "",
        "   ",
        "'",
        " padded",
        "padded ",
        "x" * 250,
        "a..b",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError):
        system_file_name(name)


def test_every_fixture_file_name_follows_the_rule() -> None:
    for path in fixture_files():
        first = parse_system(path.read_text(encoding="utf-8")).findtext("name")
        assert first is not None
        assert system_file_name(first) == path.name


@pytest.mark.realdata
def test_every_snapshot_file_name_follows_the_rule() -> None:
    for name, text in snapshot_texts().items():
        first = parse_system(text).findtext("name")
        assert first is not None
        assert system_file_name(first) == PurePath(name).name


# -- positions and constellations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("degrees", "hours", "text"),
    [
        (185.18, True, "12 20 43.20"),
        (17.79, False, "+17 47 24.00"),
        (-0.5, False, "-00 30 00.00"),
        (-48.2397, False, "-48 14 22.92"),
        (359.99999999, True, "00 00 00.00"),
        (29.999999999, False, "+30 00 00.00"),
        (0.0, True, "00 00 00.00"),
        (-15.0, True, "23 00 00.00"),
    ],
)
def test_positions_are_written_as_oec_does(degrees: float, hours: bool, text: str) -> None:
    assert sexagesimal(degrees, hours=hours) == text


def test_constellation_of_11_com() -> None:
    ra, dec = sexagesimal(185.18, hours=True), sexagesimal(17.79, hours=False)
    assert constellation_of(ra, dec) == "Coma Berenices"


def test_a_remembered_position_needs_no_astropy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    positions = [("12 26 35.9", "-63 05 56"), ("12 20 43.0", "+17 47 34")]
    with Memo(tmp_path / "memo.sqlite3") as memo:
        assert constellations_of(positions, memo) == ["Crux", "Coma Berenices"]
    monkeypatch.setitem(sys.modules, "astropy.coordinates", None)  # importing it fails
    with Memo(tmp_path / "memo.sqlite3") as memo:
        assert constellations_of(positions[::-1], memo) == ["Coma Berenices", "Crux"]
        with pytest.raises(ImportError):
            constellations_of([("05 35 17.3", "-05 23 28")], memo)  # Orion: not known


def test_constellation_has_no_stray_space() -> None:
    # astropy's table spells it "Crux " (trailing space); CI would strip it.
    assert constellation_of("12 26 35.9", "-63 05 56") == "Crux"


def test_constellation_agrees_with_what_ci_wrote_in_the_fixtures() -> None:
    checked = 0
    for path in fixture_files():
        root = parse_system(path.read_text(encoding="utf-8"))
        ra, dec = root.findtext("rightascension"), root.findtext("declination")
        if ra is None or dec is None:
            continue
        assert constellation_of(ra, dec) == root.findtext("constellation"), path.name
        checked += 1
    assert checked > 25


# -- new system files ---------------------------------------------------------------------


def test_a_new_system_looks_like_a_filled_in_template() -> None:
    b = planet(
        "11 Com b",
        "11 Com",
        mass=Value(value="19.4", errorminus="1.5", errorplus="1.5", type="msini"),
        period=Value(value="323.21", errorminus="0.19", errorplus="0.21"),
        eccentricity=Value(upperlimit="0.1"),
        discoveryyear=Value(value="2008"),
    )
    b.aliases = ["HD 107383 b"]
    b.host_aliases = ["HD 107383", "HIP 60202"]
    b.star = {
        "mass": Value(value="2.7", errorminus="0.3", errorplus="0.3"),
        "magV": Value(value="4.74"),
        "temperature": Value(value="4742"),
        "radius": Value(),  # nothing known: no empty tag
        "age": Value(value="  "),
        "spectraltype": Value(value="G8 III"),
    }
    b.system = {"distance": Value(value="88.9", errorminus="1.7", errorplus="1.7")}
    file, text = render_new_system([b])
    assert file == "11 Com.xml"
    assert text == (
        "<system>\n"
        "\t<name>11 Com</name>\n"
        "\t<rightascension>12 20 43.20</rightascension>\n"
        "\t<declination>+17 47 24.00</declination>\n"
        '\t<distance errorminus="1.7" errorplus="1.7">88.9</distance>\n'
        "\t<star>\n"
        "\t\t<name>11 Com</name>\n"
        "\t\t<name>HD 107383</name>\n"
        "\t\t<name>HIP 60202</name>\n"
        '\t\t<mass errorminus="0.3" errorplus="0.3">2.7</mass>\n'
        "\t\t<temperature>4742</temperature>\n"
        "\t\t<magV>4.74</magV>\n"
        "\t\t<spectraltype>G8 III</spectraltype>\n"
        "\t\t<planet>\n"
        "\t\t\t<name>11 Com b</name>\n"
        "\t\t\t<name>HD 107383 b</name>\n"
        "\t\t\t<list>Confirmed planets</list>\n"
        '\t\t\t<mass errorminus="1.5" errorplus="1.5" type="msini">19.4</mass>\n'
        '\t\t\t<period errorminus="0.19" errorplus="0.21">323.21</period>\n'
        '\t\t\t<eccentricity upperlimit="0.1" />\n'
        "\t\t\t<discoverymethod>RV</discoverymethod>\n"
        "\t\t\t<lastupdate>26/03/28</lastupdate>\n"
        "\t\t\t<discoveryyear>2008</discoveryyear>\n"
        "\t\t</planet>\n"
        "\t</star>\n"
        "\t<constellation>Coma Berenices</constellation>\n"
        "</system>\n"
    )
    assert problems(text, f"systems/{file}", today=TODAY) == []


def test_several_planets_share_one_star_and_pass_the_validator() -> None:
    transiting = planet(
        "Barnard's Star c",
        "Barnard's Star",
        radius=Value(value="0.1"),
        transittime=Value(value="2460000.5", errorminus="0.01", errorplus="0.01", unit="BJD"),
    )
    transiting.planet["discoverymethod"] = Value(value="transit")
    rv = planet("Barnard's Star b", "Barnard's Star", mass=Value(value="0.01", type="msini"))
    rv.host_aliases = ["GJ 699"]
    transiting.host_aliases = ["GJ 699", "HIP 87937"]
    file, text = render_new_system([rv, transiting])
    assert file == "Barnards Star.xml"
    root = parse_system(text)
    assert root.findtext("name") == "Barnard's Star"
    assert [n.text for n in root.findall("star/name")] == ["Barnard's Star", "GJ 699", "HIP 87937"]
    assert [p.findtext("name") for p in root.iter("planet")] == [
        "Barnard's Star b",
        "Barnard's Star c",
    ]
    assert root.find("star/planet[2]/istransiting").text == "1"  # CI's rule for transits
    assert root[-1].tag == "constellation"
    assert problems(text, f"systems/{file}", today=TODAY) == []
    assert "></" not in text  # no empty tags


def test_a_given_position_text_is_kept() -> None:
    b = planet("HD 41004 C b", "HD 41004 C")
    b.system = {
        "rightascension": Value(value="05 59 50"),
        "declination": Value(value="-48 14 23"),
    }
    file, text = render_new_system([b])
    assert "<rightascension>05 59 50</rightascension>" in text
    assert "<declination>-48 14 23</declination>" in text
    assert "<constellation>Pictor</constellation>" in text  # as in the real HD 41004.xml
    assert problems(text, file, today=TODAY) == []


def test_without_a_position_the_validator_refuses_the_file() -> None:
    b = planet("Nowhere b", "Nowhere")
    b.ra = b.dec = None
    file, text = render_new_system([b])
    assert "<constellation>" not in text and "<rightascension>" not in text
    assert [p.split(":")[0] for p in problems(text, file, today=TODAY)] == ["constellation"]


def test_the_planet_block_is_the_one_edit_appends() -> None:
    b = planet("Solo b", "Solo", mass=Value(value="1"), discoveryyear=Value(value="2026"))
    _, text = render_new_system([b])
    block = text[text.index("\t\t<planet>") : text.index("\t</star>")]
    existing = fixture("systems/11 Com.xml")
    appended = apply_patch(existing, [], [NewPlanet(parent_path="/system/star", record=b)])
    assert block in appended


def test_bad_input_raises_value_error() -> None:
    with pytest.raises(ValueError):
        render_new_system([])
    with pytest.raises(ValueError):
        render_new_system([planet("Orphan b", None)])
    with pytest.raises(ValueError):
        render_new_system([planet("Odd b", "Odd", rightascension=Value(value="1"))])
    with pytest.raises(UnsafeNameError):
        render_new_system([planet("x b", "../x")])
