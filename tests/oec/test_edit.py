"""apply_patch on real OEC files: only the intended lines change, exactly as asserted."""

from __future__ import annotations

import datetime as dt
import difflib
import time
from collections.abc import Sequence

import pytest

from common.changes import ChangeKind, FieldChange, NewPlanet
from common.errors import InvalidSystemFileError
from common.oec import vocab
from common.oec.edit import apply_patch, insertion_index
from common.oec.tree import find, parse_system, path_of, value_of
from common.oec.validate import new_problems
from common.records import PlanetRecord, Source, Value
from tests.oec import SNAPSHOT_FILES, fixture, snapshot_texts

TODAY = dt.date(2026, 8, 22)
COM = "systems/11 Com.xml"
COM_B = "/system/star/planet"


def diff(old: str, new: str) -> str:
    """The unified diff without context or file headers: only what changed."""
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=0)
    return "".join(list(lines)[2:])


def change(
    path: str, field: str, new: Value, old: Value | None = None, kind: str = "updated"
) -> FieldChange:
    return FieldChange(
        object="test",
        path=path,
        field=field,
        kind=ChangeKind(kind),
        old=old,
        new=new,
        source=Source.NASA,
    )


def record(name: str, **fields: str | None) -> PlanetRecord:
    return PlanetRecord(
        source=Source.NASA,
        catalogue="test.csv",
        row=1,
        name=name,
        updated=dt.date(2026, 3, 28),
        planet={k: Value(value=v) for k, v in fields.items() if v is not None},
    )


def patched(file: str, changes: list[FieldChange], planets: Sequence[NewPlanet] = ()) -> str:
    old = fixture(file)
    new = apply_patch(old, changes, planets)
    assert new_problems(old, new, file, today=TODAY) == []
    assert new.endswith("</system>\n") and new.startswith("<system>")
    return new


# -- updates in place ---------------------------------------------------------------------


def test_updating_a_value_and_its_errors_changes_exactly_one_line() -> None:
    period = Value(value="326.03", errorminus="0.32", errorplus="0.32")
    new = patched(
        COM,
        [
            change(
                COM_B, "period", Value(value="323.21", errorminus="0.19", errorplus="0.21"), period
            )
        ],
    )
    assert diff(fixture(COM), new) == (
        "@@ -35 +35 @@\n"
        '-\t\t\t<period errorminus="0.32" errorplus="0.32">326.03</period>\n'
        '+\t\t\t<period errorminus="0.19" errorplus="0.21">323.21</period>\n'
    )


def test_a_limit_replacing_a_value_drops_errors_and_msini() -> None:
    new = patched(COM, [change(COM_B, "mass", Value(upperlimit="25"))])
    assert diff(fixture(COM), new) == (
        "@@ -34 +34 @@\n"
        '-\t\t\t<mass errorminus="1.5" errorplus="1.5" type="msini">19.4</mass>\n'
        '+\t\t\t<mass upperlimit="25" />\n'
    )


def test_msini_flag_is_removed_and_set_with_the_value() -> None:
    true_mass = patched(
        COM, [change(COM_B, "mass", Value(value="19.4", errorminus="1.5", errorplus="1.5"))]
    )
    assert diff(fixture(COM), true_mass).splitlines()[-1] == (
        '+\t\t\t<mass errorminus="1.5" errorplus="1.5">19.4</mass>'
    )
    file = "systems/HD 41004.xml"
    msini = Value(value="2.6", errorminus="0.1", errorplus="0.2", type="msini")
    new = patched(file, [change("/system/binary/star/planet", "mass", msini, Value(value="2.54"))])
    assert diff(fixture(file), new) == (
        "@@ -23 +23 @@\n"
        "-\t\t\t\t<mass>2.54</mass>\n"
        '+\t\t\t\t<mass errorminus="0.1" errorplus="0.2" type="msini">2.6</mass>\n'
    )


def test_attributes_are_written_in_value_order() -> None:
    value = Value(
        value="1", unit="BJD", upperlimit="3", lowerlimit="0.5", errorplus="1", errorminus="2"
    )
    new = apply_patch(fixture(COM), [change(COM_B, "period", value)], [])
    assert (
        '<period errorminus="2" errorplus="1" lowerlimit="0.5" upperlimit="3" unit="BJD">1<' in new
    )


def test_lastupdate_is_an_ordinary_change() -> None:
    new = patched(COM, [change(COM_B, "lastupdate", Value(value="26/03/28"))])
    assert diff(fixture(COM), new) == (
        "@@ -42 +42 @@\n"
        "-\t\t\t<lastupdate>15/09/20</lastupdate>\n"
        "+\t\t\t<lastupdate>26/03/28</lastupdate>\n"
    )


def test_star_and_system_fields_update_in_place() -> None:
    new = patched(
        COM,
        [
            change("/system", "distance", Value(value="88.5", errorminus="1.1", errorplus="1.2")),
            change(
                "/system/star", "temperature", Value(value="4750", errorminus="50", errorplus="50")
            ),
        ],
    )
    assert diff(fixture(COM), new) == (
        "@@ -5 +5 @@\n"
        '-\t<distance errorminus="1.7" errorplus="1.7">88.9</distance>\n'
        '+\t<distance errorminus="1.1" errorplus="1.2">88.5</distance>\n'
        "@@ -24 +24 @@\n"
        '-\t\t<temperature errorminus="100" errorplus="100">4742</temperature>\n'
        '+\t\t<temperature errorminus="50" errorplus="50">4750</temperature>\n'
    )


def test_non_ascii_file_keeps_every_other_byte() -> None:
    file = "systems/55 Cancri.xml"
    path = "/system/binary/star[1]/planet[4]"  # 55 Cancri e
    old = fixture(file)
    current = value_of(find(parse_system(old), path).find("period"))
    new = patched(
        file,
        [
            change(
                path,
                "period",
                Value(value="0.7365474", errorminus="1.4e-06", errorplus="1.4e-06"),
                current,
            )
        ],
    )
    changed = diff(old, new).splitlines()
    assert len(changed) == 3 and changed[1].startswith("-\t\t\t\t<period")
    assert (
        changed[2] == '+\t\t\t\t<period errorminus="1.4e-06" errorplus="1.4e-06">0.7365474</period>'
    )
    assert "ρ¹ Cancri" in new and "&#" not in new
    assert new.encode("utf-8").count("ρ".encode()) == old.encode("utf-8").count("ρ".encode())


def test_a_repeated_separation_is_matched_by_unit() -> None:
    file = "systems/WASP-12.xml"
    separation = Value(value="270", errorminus="4", errorplus="4", unit="AU")
    new = patched(file, [change("/system/binary[1]", "separation", separation)])
    assert diff(fixture(file), new) == (
        "@@ -8 +8 @@\n"
        '-\t\t<separation errorminus="5" errorplus="5" unit="AU">266</separation>\n'
        '+\t\t<separation errorminus="4" errorplus="4" unit="AU">270</separation>\n'
    )


def test_a_separation_in_a_new_unit_is_a_new_line() -> None:
    file = "systems/OGLE-2005-BLG-390L.xml"
    text = fixture(file)
    root = parse_system(text)
    owner = root.find(".//separation/..")
    assert owner is not None
    units = [e.get("unit") for e in owner.findall("separation")]
    assert units == ["AU"]
    in_arcsec = Value(value="0.4", unit="arcsec")
    new = patched(file, [change(path_of(owner), "separation", in_arcsec, kind="added")])
    assert diff(text, new) == '@@ -14,0 +15 @@\n+\t\t\t<separation unit="arcsec">0.4</separation>\n'


def test_the_path_may_name_the_field_element_itself() -> None:
    new = patched(COM, [change(COM_B + "/period", "period", Value(value="326.1"))])
    assert diff(fixture(COM), new).count("\n") == 3


# -- added fields -------------------------------------------------------------------------


def test_a_missing_radius_is_one_new_line_beside_mass() -> None:
    radius = Value(value="1.08", errorminus="0.05", errorplus="0.06")
    new = patched(COM, [change(COM_B, "radius", radius, kind="added")])
    assert diff(fixture(COM), new) == (
        '@@ -34,0 +35 @@\n+\t\t\t<radius errorminus="0.05" errorplus="0.06">1.08</radius>\n'
    )


def test_missing_fields_go_next_to_their_closest_relative() -> None:
    # KOI-0002 b: radius period transittime semimajoraxis temperature list description
    # istransiting -- mass goes before radius, lastupdate after istransiting, eccentricity
    # after semimajoraxis, discoverymethod after description.
    file = "systems_kepler/KOI-0002.xml"
    path = "/system/star/planet"
    new = patched(
        file,
        [
            change(path, "mass", Value(value="0.5"), kind="added"),
            change(path, "eccentricity", Value(upperlimit="0.1"), kind="added"),
            change(path, "lastupdate", Value(value="26/03/28"), kind="added"),
            change(path, "discoverymethod", Value(value="transit"), kind="added"),
        ],
    )
    assert diff(fixture(file), new) == (
        "@@ -19,0 +20 @@\n"
        "+\t\t\t<mass>0.5</mass>\n"
        "@@ -23,0 +25 @@\n"
        '+\t\t\t<eccentricity upperlimit="0.1" />\n'
        "@@ -26,0 +29 @@\n"
        "+\t\t\t<discoverymethod>transit</discoverymethod>\n"
        "@@ -27,0 +31 @@\n"
        "+\t\t\t<lastupdate>26/03/28</lastupdate>\n"
    )


def test_insertion_falls_back_to_names_then_first_child() -> None:
    root = parse_system(fixture("systems/Procyon.xml"))
    binary = root.find("binary")
    assert binary is not None
    assert insertion_index(binary, "separation") == 0  # no names, no earlier field: first
    assert insertion_index(binary, "magV") == 3  # after the last orbital element
    star = binary.find("star")
    assert star is not None
    assert [c.tag for c in star] == ["name", "spectraltype", "mass", "magV"]
    assert insertion_index(star, "radius") == 3  # right after mass
    assert insertion_index(star, "age") == 2  # right after spectraltype, its predecessor


def test_a_transit_time_brings_istransiting_as_ci_would() -> None:
    transittime = Value(value="2455000.1", errorminus="0.1", errorplus="0.1", unit="BJD")
    new = patched(COM, [change(COM_B, "transittime", transittime, kind="added")])
    assert diff(fixture(COM), new) == (
        "@@ -39,0 +40 @@\n"
        '+\t\t\t<transittime errorminus="0.1" errorplus="0.1" unit="BJD">2455000.1</transittime>\n'
        "@@ -41,0 +43 @@\n"
        "+\t\t\t<istransiting>1</istransiting>\n"
    )


# -- new planets --------------------------------------------------------------------------


def test_a_new_planet_of_a_star_inside_nested_binaries_is_s_type() -> None:
    file = "systems/HD 41004.xml"
    planet = record(
        "HD 41004 B c", mass="18.4", period="1.3283", discoverymethod="RV", discoveryyear="2026"
    )
    planet.planet["mass"] = Value(value="18.4", errorminus="0.2", errorplus="0.2", type="msini")
    planet.aliases = ["HIP 28393 B c"]
    new = patched(file, [], [NewPlanet(parent_path="/system/binary/binary/star[1]", record=planet)])
    assert diff(fixture(file), new) == (
        "@@ -42,0 +43,11 @@\n"
        "+\t\t\t\t<planet>\n"
        "+\t\t\t\t\t<name>HD 41004 B c</name>\n"
        "+\t\t\t\t\t<name>HIP 28393 B c</name>\n"
        "+\t\t\t\t\t<list>Confirmed planets</list>\n"
        "+\t\t\t\t\t<list>Planets in binary systems, S-type</list>\n"
        '+\t\t\t\t\t<mass errorminus="0.2" errorplus="0.2" type="msini">18.4</mass>\n'
        "+\t\t\t\t\t<period>1.3283</period>\n"
        "+\t\t\t\t\t<discoverymethod>RV</discoverymethod>\n"
        "+\t\t\t\t\t<lastupdate>26/03/28</lastupdate>\n"
        "+\t\t\t\t\t<discoveryyear>2026</discoveryyear>\n"
        "+\t\t\t\t</planet>\n"
    )


def test_a_new_planet_of_a_binary_is_p_type_and_follows_the_last_planet() -> None:
    file = "systems/Kepler-16.xml"
    planet = record(
        "Kepler-16 (AB) c",
        radius="0.5",
        period="400",
        transittime="2455500.1",
        discoverymethod="transit",
    )
    planet.status = "Controversial"
    new = patched(file, [], [NewPlanet(parent_path="/system/binary", record=planet)])
    assert diff(fixture(file), new) == (
        "@@ -63,0 +64,11 @@\n"
        "+\t\t<planet>\n"
        "+\t\t\t<name>Kepler-16 (AB) c</name>\n"
        "+\t\t\t<list>Controversial</list>\n"
        "+\t\t\t<list>Planets in binary systems, P-type</list>\n"
        "+\t\t\t<radius>0.5</radius>\n"
        "+\t\t\t<period>400</period>\n"
        "+\t\t\t<transittime>2455500.1</transittime>\n"
        "+\t\t\t<discoverymethod>transit</discoverymethod>\n"
        "+\t\t\t<istransiting>1</istransiting>\n"
        "+\t\t\t<lastupdate>26/03/28</lastupdate>\n"
        "+\t\t</planet>\n"
    )


def test_a_new_free_floating_planet_goes_before_the_constellation() -> None:
    file = "systems/PSO J318.5-22.xml"
    planet = record("PSO J318.5-22 b", mass="0.01", discoverymethod="imaging")
    new = patched(file, [], [NewPlanet(parent_path="/system", record=planet)])
    lines = new.splitlines()
    assert lines[21:28] == [
        "\t<planet>",
        "\t\t<name>PSO J318.5-22 b</name>",
        "\t\t<list>Confirmed planets</list>",
        "\t\t<mass>0.01</mass>",
        "\t\t<discoverymethod>imaging</discoverymethod>",
        "\t\t<lastupdate>26/03/28</lastupdate>",
        "\t</planet>",
    ]
    assert lines[-2:] == ["\t<constellation>Vulpecula</constellation>", "</system>"]


def test_changes_and_new_planets_resolve_paths_in_the_original_file() -> None:
    # "/system/star/planet" is unique before the new planet is added, ambiguous after.
    planet = record("11 Com c", mass="1", discoverymethod="RV")
    new = patched(
        COM,
        [change(COM_B, "lastupdate", Value(value="26/03/28"))],
        [NewPlanet(parent_path="/system/star", record=planet)],
    )
    assert new.count("<planet>") == 2
    assert "<lastupdate>26/03/28</lastupdate>" in new.split("</planet>")[0]


# -- refusals -----------------------------------------------------------------------------


def test_a_path_missing_from_the_file_raises_key_error() -> None:
    with pytest.raises(KeyError):
        apply_patch(fixture(COM), [change("/system/star/planet[2]", "mass", Value(value="1"))], [])
    with pytest.raises(KeyError):
        apply_patch(
            fixture(COM), [], [NewPlanet(parent_path="/system/binary", record=record("x b"))]
        )


def test_a_change_computed_from_another_version_raises_key_error() -> None:
    stale = change(COM_B, "period", Value(value="1"), Value(value="326.0"))
    with pytest.raises(KeyError, match=r"326\.03"):
        apply_patch(fixture(COM), [stale], [])
    already_there = change(COM_B, "period", Value(value="1"), kind="added")
    with pytest.raises(KeyError, match="already there"):
        apply_patch(fixture(COM), [already_there], [])
    gone = change(COM_B, "radius", Value(value="1"), Value(value="0.9"))
    with pytest.raises(KeyError, match="no <radius>"):
        apply_patch(fixture(COM), [gone], [])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", Value(value="x")),
        ("list", Value(value="Controversial")),
        ("mass", Value()),
        ("distance", Value(value="1")),
    ],
)
def test_a_change_no_oec_file_can_hold_raises_value_error(field: str, value: Value) -> None:
    with pytest.raises(ValueError):
        apply_patch(fixture(COM), [change(COM_B, field, value)], [])


def test_text_not_in_oecs_form_is_refused() -> None:
    text = '<?xml version="1.0"?>\n' + fixture(COM)
    with pytest.raises(InvalidSystemFileError):
        apply_patch(text, [change(COM_B, "period", Value(value="1"))], [])


def test_comments_survive_an_edit() -> None:
    # No OEC file has comments (CI's parser would drop them), but a hand-made one keeps them.
    text = fixture(COM).replace("\t\t<magV>", "\t\t<!-- V from Hipparcos -->\n\t\t<magV>")
    new = apply_patch(text, [change("/system/star", "magV", Value(value="4.75"))], [])
    assert diff(text, new) == "@@ -20 +20 @@\n-\t\t<magV>4.74</magV>\n+\t\t<magV>4.75</magV>\n"


def test_no_change_gives_the_same_text() -> None:
    assert apply_patch(fixture(COM), [], []) == fixture(COM)


# -- every real file ----------------------------------------------------------------------


@pytest.mark.realdata
def test_every_snapshot_file_takes_an_update_and_a_new_planet_cleanly() -> None:
    texts = snapshot_texts()
    assert len(texts) == SNAPSHOT_FILES
    elapsed = 0.0
    edited = 0
    for name, text in texts.items():
        root = parse_system(text)
        planet = root.find(".//planet")
        if planet is None:
            continue
        path = path_of(planet)
        host = path_of(planet.getparent())
        old = planet.find("lastupdate")
        lastupdate = change(
            path,
            "lastupdate",
            Value(value="26/03/28"),
            value_of(old) if old is not None else None,
            "updated" if old is not None else "added",
        )
        newcomer = record("OEC Sync test b", mass="1", discoverymethod="RV")
        start = time.perf_counter()
        new = apply_patch(text, [lastupdate], [NewPlanet(parent_path=host, record=newcomer)])
        elapsed += time.perf_counter() - start
        assert new_problems(text, new, name, today=TODAY) == [], name
        changed = [line for line in diff(text, new).splitlines() if not line.startswith("@@")]
        removed = [line for line in changed if line.startswith("-")]
        assert len(removed) == (1 if old is not None else 0), name
        parent = planet.getparent()
        grandparent = parent.getparent()
        binary = vocab.binary_list(parent.tag, grandparent.tag if grandparent is not None else None)
        # lastupdate: 1 line changed or added; the planet: 7 lines, + 1 for a binary list.
        assert len(changed) == 2 * len(removed) + (old is None) + 7 + (binary is not None), name
        edited += 1
    assert edited > 6900
    assert elapsed / edited < 0.01  # about 0.3 ms a file
