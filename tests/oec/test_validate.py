"""The validator: real files pass, and a real file broken one way shows that one rule."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path

import pytest

from common.errors import InvalidSystemFileError
from common.oec import vocab
from common.oec.tree import parse_system
from common.oec.validate import (
    LEGACY_RULES,
    RULES,
    ensure_valid,
    new_problems,
    problems,
    rule_of,
)
from tests.oec import SNAPSHOT_FILES, fixture, fixture_files, snapshot_texts

TODAY = dt.date(2026, 8, 22)  # the snapshot's date: fixes the "lastupdate in the future" rule
COM = "systems/11 Com.xml"
WASP12 = "systems/WASP-12.xml"
VIDEO = "\t<videolink>http://youtu.be/qyJXJJDrEDo</videolink>\n"
CONSTELLATION = "\t<constellation>Coma Berenices</constellation>\n"
CONFIRMED = "<list>Confirmed planets</list>"


def rules(text: str, file: str) -> set[str]:
    return {rule_of(p) for p in problems(text, file, today=TODAY)}


def broken(file: str, old: str, new: str) -> str:
    """The real fixture ``file`` with the one occurrence of ``old`` replaced by ``new``."""
    text = fixture(file)
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {file}"
    return text.replace(old, new)


# -- real files pass ----------------------------------------------------------------------


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_real_fixture_has_no_problem_but_its_legacy_ones(path: Path) -> None:
    found = problems(path.read_text(encoding="utf-8"), str(path), today=TODAY)
    if path.name == "WASP-117.xml":  # one of the 4 legacy negative errors
        assert found == ["negative-error: planet \"WASP-117 b\" <temperature>: errorminus='-26'"]
    else:
        assert found == []


@pytest.mark.realdata
def test_every_snapshot_file_passes_but_the_known_legacy_problems() -> None:
    texts = snapshot_texts()
    assert len(texts) == SNAPSHOT_FILES
    start = time.perf_counter()
    counts = Counter(rule_of(p) for name, text in texts.items() for p in problems(text, name))
    elapsed = time.perf_counter() - start
    assert dict(counts) == LEGACY_RULES
    assert elapsed < 60  # about 4 s on a laptop; a guard against an accidental blow-up


@pytest.mark.realdata
def test_vocabulary_matches_the_snapshot() -> None:
    """Every tag, attribute, list and method of the real files is in the vocabulary."""
    tags: dict[str, set[str]] = {}
    attributes: set[str] = set()
    for text in snapshot_texts().values():
        for element in parse_system(text).iter():
            parent = element.getparent()
            if parent is not None:
                tags.setdefault(parent.tag, set()).add(element.tag)
            attributes.update(element.attrib)
    assert set(tags) <= vocab.OBJECTS
    for parent, children in tags.items():
        assert children <= vocab.ALLOWED_CHILDREN[parent], parent
    assert attributes <= set(vocab.ATTRIBUTES)


def test_constellations_are_astropys_names() -> None:
    from astropy.coordinates import SkyCoord, funcs, get_constellation

    get_constellation(SkyCoord(0, 0, unit="deg"))  # loads astropy's table
    names = {str(name).strip() for name in funcs._constellation_data["cnames_long"]}
    assert names == vocab.CONSTELLATIONS


def test_field_order_covers_every_allowed_field() -> None:
    for obj, allowed in vocab.ALLOWED_CHILDREN.items():
        fields = allowed - vocab.OBJECTS
        assert fields <= set(vocab.FIELD_ORDER[obj]), obj
        assert len(set(vocab.FIELD_ORDER[obj])) == len(vocab.FIELD_ORDER[obj])


def test_every_rule_has_a_description() -> None:
    assert set(LEGACY_RULES) <= set(RULES)


# -- each rule, on a real file broken in exactly that way ---------------------------------

CASES: list[tuple[str, str, str, str, str]] = [
    # (rule, file, old, new, a word the message must hold)
    ("not-xml", COM, "</system>\n", "\n", "line"),
    ("unknown-tag", COM, "<magV>4.74</magV>", "<magv>4.74</magv>", "<magv>"),
    ("misplaced-tag", COM, "<magV>4.74</magV>", "<distance>12</distance>", "inside <star>"),
    ("unknown-attribute", COM, "<magV>4.74</magV>", '<magV error="0.1">4.74</magV>', "error="),
    ("not-a-number", COM, "<magV>4.74</magV>", "<magV>4,74</magV>", "4,74"),
    ("not-a-number", COM, 'errorminus="1.7"', 'errorminus="1.7 pc"', "1.7 pc"),
    ("not-a-number", COM, "<discoveryyear>2008", "<discoveryyear>2008?", "2008?"),
    ("zero-error", COM, 'errorminus="1.7"', 'errorminus="0.0"', "errorminus"),
    ("zero-error", COM, 'errorminus="1.7"', 'errorminus=""', "errorminus"),
    ("one-sided-error", COM, ' errorplus="1.7"', "", "errorminus/errorplus"),
    ("negative-error", COM, 'errorminus="1.7"', 'errorminus="-1.7"', "-1.7"),
    ("lastupdate", COM, "15/09/20", "2015-09-20", "yy/mm/dd"),
    ("lastupdate", COM, "15/09/20", "15/13/20", "yy/mm/dd"),
    ("lastupdate", COM, "15/09/20", "15/9/20", "yy/mm/dd"),
    ("lastupdate", COM, "15/09/20", "27/09/20", "future"),
    ("discoverymethod", COM, ">RV<", ">Radial Velocity<", "Radial Velocity"),
    (
        "missing-discoverymethod",
        COM,
        "\t\t\t<discoverymethod>RV</discoverymethod>\n",
        "",
        "11 Com b",
    ),
    ("list", "systems/NGC 4349 No 127.xml", "open clusters", "open cluster", "open cluster"),
    ("status", COM, CONFIRMED, CONFIRMED + "\n\t\t\t<list>Controversial</list>", "2 status"),
    (
        "status",
        "systems/HD 38858.xml",
        "<list>Retracted planet candidate</list>",
        "<list>Orphan planets</list>",
        "0 status",
    ),
    (
        "duplicate",
        COM,
        "\t\t\t<period",
        "\t\t\t<period>1</period>\n\t\t\t<period",
        "<period> 2 times",
    ),
    (
        "missing-name",
        "systems/Procyon.xml",
        "\t\t\t<name>Procyon A</name>\n",
        "",
        "without a <name>",
    ),
    (
        "declaration",
        COM,
        "<system>",
        '<?xml version="1.0" encoding="UTF-8"?>\n<system>',
        "declaration",
    ),
    ("final-newline", COM, "</system>\n", "</system>", "newline"),
    ("final-newline", COM, "</system>\n", "</system>\n\n", "newline"),
    ("comment", COM, "\n\t\t<mass", "\n\t\t<!-- checked by hand -->\n\t\t<mass", "comment"),
    ("indentation", COM, "\n\t\t<mass", "\n    <mass", "<mass>"),
    ("indentation", COM, "\t\t\t<period", "\t\t<period", "<period>"),
    ("whitespace", COM, "<magV>4.74</magV>", "<magV> 4.74</magV>", "<magV>"),
    ("whitespace", COM, "G8 III", "G8\xa0III", "no-break"),
    ("layout", COM, 'errorminus="1.7"', "errorminus='1.7'", "serialisation"),
    (
        "layout",
        "systems/SWEEPS-4.xml",
        '<mass upperlimit="3.8" />',
        '<mass upperlimit="3.8"/>',
        "serialisation",
    ),
    ("empty-tag", COM, "<magV>4.74</magV>", "<magV></magV>", "<magV>"),
    ("unit", WASP12, 'unit="BJD"', 'unit="days"', "days"),
    ("unit", COM, "<magV>4.74</magV>", '<magV unit="mag">4.74</magV>', "mag"),
    ("constellation", COM, CONSTELLATION, "", "CI would add"),
    ("constellation", COM, "Coma Berenices<", "Coma<", "unknown"),
    ("constellation-position", COM, VIDEO + CONSTELLATION, CONSTELLATION + VIDEO, "last child"),
    ("position", COM, "+17 47 34.3392", "17 47 34.3392", "declination"),
    ("position", COM, "12 20 43.0255", "12h20m43.0255s", "rightascension"),
    (
        "istransiting",
        WASP12,
        "\t\t\t\t<istransiting>1</istransiting>\n",
        "",
        "without <istransiting>",
    ),
    ("istransiting", WASP12, "<istransiting>1<", "<istransiting>yes<", "not 0 or 1"),
    (
        "binary-list",
        WASP12,
        "\t\t\t\t<list>Planets in binary systems, S-type</list>\n",
        "",
        "S-type",
    ),
    ("binary-list", "systems/Kepler-16.xml", "P-type", "S-type", "P-type"),
    (
        "binary-list",
        COM,
        CONFIRMED,
        CONFIRMED + "\n\t\t\t<list>Planets in binary systems, S-type</list>",
        "not in that position",
    ),
    ("heavy-planet", COM, 'type="msini">19.4<', 'type="msini">61<', "> 60"),
    (
        "several-hosts",
        "systems/Procyon.xml",
        "\t<constellation>",
        "\t<star>\n\t\t<name>Procyon C</name>\n\t</star>\n\t<constellation>",
        "2 stars/binaries",
    ),
]


@pytest.mark.parametrize(("rule", "file", "old", "new", "word"), CASES)
def test_rule_fires_alone_on_a_real_file_broken_that_way(
    rule: str, file: str, old: str, new: str, word: str
) -> None:
    found = problems(broken(file, old, new), file, today=TODAY)
    assert {rule_of(p) for p in found} == {rule}, found
    assert any(word in p for p in found), found


def test_every_rule_is_tested() -> None:
    tested = {case[0] for case in CASES} | {"file-name", "root", "line-endings"}
    assert tested == set(RULES)


def test_crlf_line_endings() -> None:
    text = fixture(COM).replace("\n", "\r\n")
    assert problems(text, COM, today=TODAY) == [
        "line-endings: 11 Com.xml: CR characters in the file"
    ]


def test_root_must_be_system() -> None:
    text = fixture(COM).replace("<system>", "<planet>").replace("</system>", "</planet>")
    assert problems(text, COM, today=TODAY) == ["root: 11 Com.xml: root is <planet>"]


def test_file_name_rule_removes_apostrophes() -> None:
    text = fixture("systems/Barnards Star.xml")
    assert "<name>Barnard's Star</name>" in text
    assert rules(text, "systems/Barnards Star.xml") == set()
    assert rules(text, "systems/Barnard's Star.xml") == {"file-name"}
    assert rules(fixture(COM), "systems/11 Comae.xml") == {"file-name"}


def test_only_the_suns_file_may_lack_a_constellation() -> None:
    assert "<constellation>" not in fixture("systems/Sun.xml")
    assert rules(fixture("systems/Sun.xml"), "systems/Sun.xml") == set()
    text = broken(COM, "\t<constellation>Coma Berenices</constellation>\n", "")
    assert rules(text, "Sun.xml") == {"file-name"}


def test_istransiting_zero_satisfies_ci() -> None:
    # 40 snapshot planets have a transittime and istransiting 0: CI only adds a missing tag.
    text = fixture("systems/HD 143105.xml")
    assert "<istransiting>0</istransiting>" in text and "<transittime" in text
    assert rules(text, "systems/HD 143105.xml") == set()


def test_problems_name_the_object_not_its_position() -> None:
    text = broken(COM, "<magV>4.74</magV>", "<magV>x</magV>")
    assert problems(text, COM, today=TODAY) == ["not-a-number: star \"11 Com\" <magV>: value 'x'"]
    nameless = broken("systems/HD 41004.xml", "<period>1.32</period>", "<period>?</period>")
    assert problems(nameless, "systems/HD 41004.xml", today=TODAY) == [
        "not-a-number: binary /system/binary/binary <period>: value '?'"
    ]


# -- comparing before and after an edit ---------------------------------------------------


def test_new_problems_ignores_legacy_problems_of_the_original() -> None:
    file = "systems/WASP-117.xml"
    old = fixture(file)
    assert rules(old, file) == {"negative-error"}
    edited = old.replace("<lastupdate>14/06/27", "<lastupdate>26/08/22")
    assert new_problems(old, edited, file, today=TODAY) == []
    ensure_valid(edited, file, old_text=old, today=TODAY)
    with pytest.raises(InvalidSystemFileError):
        ensure_valid(edited, file, today=TODAY)
    worse = edited.replace('errorminus="2.7"', 'errorminus="-2.7"')
    assert new_problems(old, worse, file, today=TODAY) == [
        "negative-error: planet \"WASP-117 b\" <periastron>: errorminus='-2.7'"
    ]


def test_new_problems_lists_what_the_edit_broke() -> None:
    old = fixture(COM)
    new = old.replace("<magV>4.74</magV>", "<magV></magV>")
    assert new_problems(old, new, COM, today=TODAY) == [
        'empty-tag: star "11 Com" <magV>: no value, no attributes'
    ]


def test_new_problems_compares_as_a_multiset() -> None:
    empty = "\t\t<magR></magR>\n"
    old = broken(COM, "\t\t<magV>", empty + "\t\t<magV>")
    new = old.replace(empty, empty * 2)
    assert new_problems(old, new, COM, today=TODAY) == [
        'duplicate: star "11 Com": <magR> 2 times',
        'empty-tag: star "11 Com" <magR>: no value, no attributes',
    ]


def test_ensure_valid_raises_with_every_problem() -> None:
    text = broken(COM, "<magV>4.74</magV>", "<magV></magV>")
    with pytest.raises(InvalidSystemFileError) as error:
        ensure_valid(text, COM, today=TODAY)
    assert error.value.file == COM
    assert [rule_of(p) for p in error.value.problems] == ["empty-tag"]
    ensure_valid(fixture(COM), COM, today=TODAY)
