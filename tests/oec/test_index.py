"""The alias index over a real git repository built from tests/fixtures/oec."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from pathlib import Path

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord

from common.matching import SAME_STAR_ARCSEC, MatchKind, match
from common.oec.index import (
    AliasIndex,
    IndexEntry,
    parse_dec,
    parse_ra,
)
from common.oec.tree import names_of, parse_system
from common.records import PlanetRecord, Source, Value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "oec"
STRICT = (("systems", "systems_kepler"),)


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
    }
    result = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return result.stdout.strip()


def make_repo(path: Path) -> Path:
    for folder in ("systems", "systems_kepler"):
        shutil.copytree(FIXTURES / folder, path / folder)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "fixture snapshot")
    return path


def record(
    name: str,
    *aliases: str,
    host: str | None = None,
    host_aliases: tuple[str, ...] = (),
    letter: str | None = None,
    ra: float | None = None,
    dec: float | None = None,
    period: str | None = None,
) -> PlanetRecord:
    return PlanetRecord(
        source=Source.EU,
        catalogue="test",
        row=1,
        name=name,
        aliases=list(aliases),
        host=host,
        host_aliases=list(host_aliases),
        letter=letter,
        ra=ra,
        dec=dec,
        planet={"period": Value(value=period)} if period else {},
    )


def position(index: AliasIndex, file: str) -> tuple[float, float]:
    root = parse_system(index.system_text(file))
    ra = parse_ra(root.findtext("rightascension"))
    dec = parse_dec(root.findtext("declination"))
    assert ra is not None and dec is not None
    return ra, dec


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("oec"))


@pytest.fixture(scope="module")
def index(repo: Path) -> AliasIndex:
    return AliasIndex.build(repo)


# --- building -------------------------------------------------------------------------------


def test_build_reads_every_file_at_head(repo: Path, index: AliasIndex) -> None:
    fixture_files = sorted(f"{p.parent.name}/{p.name}" for p in FIXTURES.glob("systems*/*.xml"))
    assert index.files == len(fixture_files) == 50
    assert index.file_names() == fixture_files
    assert index.commit == git(repo, "rev-parse", "HEAD")
    assert index.errors == {}
    text = (FIXTURES / "systems" / "Alpha Centauri.xml").read_text(encoding="utf-8")
    assert index.system_text("systems/Alpha Centauri.xml") == text
    assert "α Centauri C b" in text  # raw non-ASCII survives


def test_positions_parse() -> None:
    assert parse_ra("01 52 50.5345") == pytest.approx(28.2105604, abs=1e-6)
    assert parse_dec("-19 30 25.1107") == pytest.approx(-19.5069752, abs=1e-6)
    assert parse_dec("-00 30 00") == pytest.approx(-0.5)
    assert parse_ra("19 07 14") == pytest.approx(286.808333, abs=1e-5)
    assert parse_ra("25 00 00") is None
    assert parse_ra("") is None
    assert parse_dec("abc") is None


def test_find_names(index: AliasIndex) -> None:
    hits = index.find_names("Gliese 1214") + index.find_names("gl 876")
    assert [(e.file, e.path, e.kind) for e in hits] == [
        ("systems/Gliese 876.xml", "/system", "system"),
        ("systems/Gliese 876.xml", "/system/star", "star"),
    ]
    assert all(isinstance(e, IndexEntry) for e in hits)
    # A composed name is found only when asked for.
    assert index.find_names("2MASS J19482762+4154328 c") == []
    composed = index.find_names("2MASS J19482762+4154328 c", composed=True)
    assert [(e.path, e.via) for e in composed] == [("/system/star/planet[2]", "composed")]


def test_composed_names_equal_normalising_the_joined_text(index: AliasIndex) -> None:
    from common.oec.names import normalise

    for data in index._files.values():
        for key, _i, via, text in data.keys:
            if via == 2:
                assert key == normalise(text), text


# --- matching -------------------------------------------------------------------------------


def test_match_by_primary_name(index: AliasIndex) -> None:
    m = match(index, record("Kepler-11 b"))
    assert (m.kind, m.file, m.path, m.via, m.matched_name) == (
        MatchKind.PLANET,
        "systems/Kepler-11.xml",
        "/system/star/planet[1]",
        "name",
        "Kepler-11 b",
    )


@pytest.mark.parametrize(
    ("name", "file", "path", "matched"),
    [
        ("KOI-0157.06", "systems/Kepler-11.xml", "/system/star/planet[1]", "KOI-157.06"),
        (
            "Gaia DR2 2076960598545789824 g",
            "systems/Kepler-11.xml",
            "/system/star/planet[6]",
            "Gaia DR2 2076960598545789824 g",
        ),
        ("24 Bo&ouml; b", "systems/24 Boo.xml", "/system/star/planet", "24 Boo b"),
        ("GJ 667 C b", "systems/Gliese 667.xml", "/system/binary/star/planet[1]", "Gliese 667 C b"),
        ("rho01 Cnc A e", "systems/55 Cancri.xml", "/system/binary/star[1]/planet[4]", None),
        ("Tau Bootis A b", "systems/tau Boo.xml", "/system/binary/star[1]/planet", None),
        ("KIC 1161345 b", "systems/KOI-984.xml", "/system/star/planet", "KIC 1161345 b"),
        ("KOI-1.01", "systems/TrES-2.xml", "/system/binary/star[1]/planet", "KOI-1.01"),
        ("Kepler-16 b", "systems/Kepler-16.xml", "/system/binary/planet", "Kepler-16 b"),
    ],
)
def test_match_by_alias(
    index: AliasIndex, name: str, file: str, path: str, matched: str | None
) -> None:
    m = match(index, record(name))
    assert (m.kind, m.file, m.path) == (MatchKind.PLANET, file, path)
    assert m.via in ("name", "alias")
    if matched:
        assert m.matched_name == matched


def test_circumbinary_planet_with_star_a_as_host(index: AliasIndex) -> None:
    m = match(index, record("Kepler-16 (AB) b", host="Kepler-16 A"))
    assert (m.kind, m.path) == (MatchKind.PLANET, "/system/binary/planet")


def test_uppercase_planet_letter_in_oec(index: AliasIndex) -> None:
    # OEC calls the companion "DH Tau B"; catalogues write "DH Tau b".
    m = match(index, record("DH Tau b", host="DH Tau"))
    assert (m.kind, m.file, m.matched_name) == (MatchKind.PLANET, "systems/DH Tau.xml", "DH Tau B")


@pytest.mark.parametrize(
    ("rec", "file", "path"),
    [
        # star alias + letter, as a record name and as host + letter
        (record("2MASS J19482762+4154328 c"), "systems/Kepler-11.xml", "/system/star/planet[2]"),
        (
            record("Unknown-1 c", host="Nobody", host_aliases=("2MASS J19482762+4154328",)),
            "systems/Kepler-11.xml",
            "/system/star/planet[2]",
        ),
        # the binary's name: only star A has a planet b
        (
            record("HD 126614 b", host="HD 126614"),
            "systems/HD 126614.xml",
            "/system/binary/binary/star[1]/planet",
        ),
        (
            record("HD 41004 b", host="HD 41004"),
            "systems/HD 41004.xml",
            "/system/binary/star/planet",
        ),
        # exoplanet.eu's "Ab" for the only star OEC lists
        (record("14 And Ab", host="14 And A"), "systems/14 And.xml", "/system/star/planet"),
        # circumbinary planet by the system's KIC number
        (record("KIC 12644769 b"), "systems/Kepler-16.xml", "/system/binary/planet"),
    ],
)
def test_match_by_composed_name(index: AliasIndex, rec: PlanetRecord, file: str, path: str) -> None:
    m = match(index, rec)
    assert (m.kind, m.file, m.path) == (MatchKind.PLANET, file, path)
    assert m.via in ("composed", "name", "alias")


def test_composed_via_is_reported(index: AliasIndex) -> None:
    m = match(index, record("KIC 6541920 z", host="KOI-157", letter="c"))
    # "KIC 6541920 z" is unknown; KOI-157 + c is Kepler-11 c's alias "KOI-157 c".
    assert (m.kind, m.path, m.via) == (MatchKind.PLANET, "/system/star/planet[2]", "composed")


@pytest.mark.parametrize(
    ("rec", "file", "path", "via"),
    [
        (record("HD 11506 d", host="HD 11506"), "systems/HD 11506.xml", "/system/star", "name"),
        (record("HIP 8770 d", host="HIP 8770"), "systems/HD 11506.xml", "/system/star", "alias"),
        # a system name and its only star are one host: the star
        (
            record("Proxima e", host="Proxima Centauri"),
            "systems/Alpha Centauri.xml",
            "/system/binary/star",
            "name",
        ),
        (
            record("τ Boötis A c", host="τ Boötis A"),
            "systems/tau Boo.xml",
            "/system/binary/star[1]",
            "name",
        ),
        # the system name of a binary system: its only child, the binary
        (record("tau Boo c", host="tau Boo"), "systems/tau Boo.xml", "/system/binary", "name"),
        # a system alias that is also a star name: the star (HD 41004 B)
        (
            record("HD 41004 B c", host="HD 41004 B"),
            "systems/HD 41004.xml",
            "/system/binary/binary/star[1]",
            "name",
        ),
        (
            record("GJ 667 C i", host="GJ 667C"),
            "systems/Gliese 667.xml",
            "/system/binary/star",
            "name",  # "GJ 667C" is a spelling of the primary name "Gliese 667 C"
        ),
        (
            record("Barnard’s star c", host="Barnard’s Star"),
            "systems/Barnards Star.xml",
            "/system/star",
            "name",
        ),
        (
            record("α Cen A c", host="alpha Centauri A"),
            "systems/Alpha Centauri.xml",
            "/system/binary/binary/star[1]",
            "name",
        ),
    ],
)
def test_host_for_a_new_planet(
    index: AliasIndex, rec: PlanetRecord, file: str, path: str, via: str
) -> None:
    m = match(index, rec)
    assert (m.kind, m.file, m.path, m.via) == (MatchKind.HOST, file, path, via)
    assert m.matched_name


def test_host_with_the_letter_taken_is_refused(index: AliasIndex) -> None:
    # The host is known by name, the planet name is not, yet the host has a planet "b" that
    # no composed name reaches (KOI-314 has two "b" planets, so its star's 2MASS name is not
    # composed with "b"): probably the same planet under a name OEC lacks. Adding it would
    # duplicate it.
    m = match(index, record("Nova-6 b", host="2MASS J19213157+4317347"))
    assert m.kind is MatchKind.AMBIGUOUS
    assert set(m.candidates) == {
        "systems/KOI-314.xml:/system/star (KOI-314)",
        "systems/KOI-314.xml:/system/star/planet[1] (KOI-314 b)",
        "systems/KOI-314.xml:/system/star/planet[3] (Kepler-138 b)",
    }
    m = match(index, record("Nova-6 z", host="2MASS J19213157+4317347"))
    assert (m.kind, m.via) == (MatchKind.HOST, "alias")
    # "HD 41004 B" is also a system alias; composing it with the only planet b of the system
    # (HD 41004 A b) would be wrong, so star B takes a new planet b.
    m = match(index, record("Nova-7 b", host="HD 41004 B"))
    assert (m.kind, m.path) == (MatchKind.HOST, "/system/binary/binary/star[1]")


def test_match_by_position(index: AliasIndex) -> None:
    ra, dec = position(index, "systems/HD 11506.xml")
    m = match(index, record("Nova-1 d", ra=ra + 2 / 3600, dec=dec))
    assert (m.kind, m.file, m.path, m.via) == (
        MatchKind.HOST,
        "systems/HD 11506.xml",
        "/system/star",
        "position",
    )
    # Planet b is there already: refused, with the planet as a candidate.
    m = match(index, record("Nova-1 b", ra=ra, dec=dec))
    assert m.kind is MatchKind.AMBIGUOUS
    assert "systems/HD 11506.xml:/system/star/planet[1] (HD 11506 b)" in m.candidates
    # ... unless its period is OEC's b's too (1627.5 d): then it is that planet.
    m = match(index, record("Nova-1 b", ra=ra, dec=dec, period="1628.1"))
    assert (m.kind, m.path, m.via, m.matched_name) == (
        MatchKind.PLANET,
        "/system/star/planet[1]",
        "letter and period",
        "HD 11506 b",
    )
    assert match(index, record("Nova-1 b", ra=ra, dec=dec, period="1640")).kind is (
        MatchKind.AMBIGUOUS
    )
    # Outside the radius: nothing.
    far = SAME_STAR_ARCSEC * 3 / 3600
    assert match(index, record("Nova-1 d", ra=ra, dec=dec + far)).kind is MatchKind.NONE
    assert match(index, record("Nova-1 d", ra=ra, dec=dec + far), radius_arcsec=60).kind is (
        MatchKind.HOST
    )


def test_position_with_several_stars(index: AliasIndex) -> None:
    ra, dec = position(index, "systems/tau Boo.xml")
    m = match(index, record("Nova-2 c", ra=ra, dec=dec))
    assert m.kind is MatchKind.AMBIGUOUS
    assert len(m.candidates) == 2
    # The component letter of the host name decides.
    m = match(index, record("Nova-2 c", host="Nova-2 B", ra=ra, dec=dec))
    assert (m.kind, m.path) == (MatchKind.HOST, "/system/binary/star[2]")
    # A companion OEC does not know must not land on the single star it knows.
    ra, dec = position(index, "systems/HD 11506.xml")
    m = match(index, record("Nova-3 b", host="Nova-3 B", ra=ra, dec=dec))
    assert m.kind is MatchKind.AMBIGUOUS


def test_two_systems_within_the_radius(index: AliasIndex) -> None:
    ra, dec = position(index, "systems/KMT-2021-BLG-0240.xml")
    hits = index.match_host_position(ra, dec)
    assert [h.file for h in hits] == [
        "systems/KMT-2021-BLG-0240.xml",
        "systems/KMT-2021-BLG-0240L.xml",
    ]
    m = match(index, record("Nova-4 d", ra=ra, dec=dec))
    assert m.kind is MatchKind.AMBIGUOUS
    assert len(m.candidates) == 2


def test_match_host_position(index: AliasIndex) -> None:
    ra, dec = position(index, "systems/Kepler-4.xml")
    hits = index.match_host_position(ra, dec, radius_arcsec=10)
    # OEC keeps the KOI copy, its position rounded to whole seconds, 6.6″ away.
    assert [h.file for h in hits] == ["systems/Kepler-4.xml", "systems_kepler/KOI-0007.xml"]
    assert hits[0].separation_arcsec < 1e-6 < hits[1].separation_arcsec < 10
    assert hits[1].path == "/system" and hits[1].primary == "KOI-0007"
    assert index.match_host_position(ra, dec, radius_arcsec=5) == hits[:1]
    assert index.match_host_position(ra, dec, folders=("systems_kepler",)) == hits[1:]
    assert index.match_host_position(0.0, -89.99) == []


def test_no_match(index: AliasIndex) -> None:
    assert match(index, record("WASP-999 b", host="WASP-999")).kind is MatchKind.NONE
    assert match(index, record("WASP-999 b", ra=10.0, dec=10.0)).kind is MatchKind.NONE


@pytest.mark.parametrize(
    ("rec", "expected"),
    [
        # OEC holds "Kepler-138 b" on two planets of KOI-314
        (
            record("Kepler-138 b"),
            {
                "systems/KOI-314.xml:/system/star/planet[1] (KOI-314 b)",
                "systems/KOI-314.xml:/system/star/planet[3] (Kepler-138 b)",
            },
        ),
        # the planet is in one file, the host in another
        (
            record("Kepler-11 b", host="HD 11506"),
            {
                "systems/Kepler-11.xml:/system/star/planet[1] (Kepler-11 b)",
                "systems/HD 11506.xml:/system/star/planet[1] (HD 11506 b)",
            },
        ),
        (
            record("Kepler-11 g", host="Nova", host_aliases=("Gliese 876",)),
            {
                "systems/Kepler-11.xml:/system/star/planet[6] (Kepler-11 g)",
                "systems/Gliese 876.xml:/system/star (Gliese 876)",
            },
        ),
        # the host names include a sibling of the planet's star
        (
            record("tau Boo A b", host="tau Boo B"),
            {
                "systems/tau Boo.xml:/system/binary/star[1]/planet (tau Boo A b)",
                "systems/tau Boo.xml:/system/binary/star[2] (tau Boo B)",
            },
        ),
        # two names of the row point at two planets
        (
            record("Kepler-11 b", "KOI-157.01"),
            {
                "systems/Kepler-11.xml:/system/star/planet[1] (Kepler-11 b)",
                "systems/Kepler-11.xml:/system/star/planet[2] (Kepler-11 c)",
            },
        ),
        # a lens and its event are one object; OEC has both files
        (
            record("KMT-2021-BLG-0240L b"),
            {
                "systems/KMT-2021-BLG-0240.xml:/system/star/planet[1] (KMT-2021-BLG-0240 b)",
                "systems/KMT-2021-BLG-0240L.xml:/system/star/planet (KMT-2021-BLG-0240L b)",
            },
        ),
        # case folding: OEC's PSR 1257+12 "B" (planet c) and "b"
        (
            record("PSR B1257+12 b"),
            {
                "systems/PSR 1257+12.xml:/system/star/planet[1] (PSR 1257+12 A)",
                "systems/PSR 1257+12.xml:/system/star/planet[2] (PSR 1257+12 B)",
            },
        ),
        # hosts in two files
        (
            record("Nova z", host="Gliese 876", host_aliases=("HD 11506",)),
            {
                "systems/Gliese 876.xml:/system/star (Gliese 876)",
                "systems/HD 11506.xml:/system/star (HD 11506)",
            },
        ),
        # OEC keeps this brown dwarf as a star: adding it as a planet would duplicate it
        (
            record("HD 41004 B b", host="HD 41004 B"),
            {"systems/HD 41004.xml:/system/binary/binary/star[2] (HD 41004 B b)"},
        ),
        # a host named like a planet once case is folded: a second system for that planet
        (
            record("Gliese 876 Bb", host="Gliese 876 B"),
            {"systems/Gliese 876.xml:/system/star/planet[1] (Gliese 876 b)"},
        ),
        # two stars of one system
        (
            record("Nova z", host="tau Boo A", host_aliases=("tau Boo B",)),
            {
                "systems/tau Boo.xml:/system/binary/star[1] (tau Boo A)",
                "systems/tau Boo.xml:/system/binary/star[2] (tau Boo B)",
            },
        ),
    ],
)
def test_ambiguous_is_refused(index: AliasIndex, rec: PlanetRecord, expected: set[str]) -> None:
    m = match(index, rec)
    assert m.kind is MatchKind.AMBIGUOUS
    assert m.file is None and m.path is None
    assert set(m.candidates) == expected


def test_duplicates_inside_one_object_are_one_object(index: AliasIndex) -> None:
    # KOI-984 lists "KIC 1161345 b" twice on its planet.
    planet = parse_system(index.system_text("systems/KOI-984.xml")).find(".//planet")
    assert planet is not None
    assert names_of(planet).count("KIC 1161345 b") == 2
    assert len(index.find_names("KIC 1161345 b")) == 1
    # "HD 41004 B" is a system alias and the name of star B: one host, the star.
    assert match(index, record("X c", host="HD 41004 B")).kind is MatchKind.HOST


def test_kepler_folder_is_a_second_tier(index: AliasIndex) -> None:
    # In systems/ only: the KOI copy in systems_kepler/ is not consulted.
    m = match(index, record("KOI-7.01"))
    assert (m.kind, m.file) == (MatchKind.PLANET, "systems/Kepler-4.xml")
    # The strict view sees both copies.
    m = match(index, record("KOI-7.01"), tiers=STRICT)
    assert m.kind is MatchKind.AMBIGUOUS
    assert "systems_kepler/KOI-0007.xml:/system/star/planet (KOI-0007 b)" in m.candidates
    # Only in systems_kepler/: found there, zero padding or not, and so a new system of
    # systems/, as the maintainer gives a confirmed KOI its own file (the KOI file stays).
    for name in ("KOI-0005 b", "KOI-5.01", "K00005.01"):
        m = match(index, record(name), tiers=(("systems_kepler",),))
        assert (m.kind, m.file) == (MatchKind.PLANET, "systems_kepler/KOI-0005.xml"), name
        m = match(index, record(name))
        assert (m.kind, m.file, m.via, m.matched_name) == (
            MatchKind.NONE,
            None,
            "kepler candidate",
            "KOI-0005",
        ), name
    # A KOI copy of a systems/ star is no reason for a new file: the row that only the copy
    # finds (by position here: 8″ beyond KOI-0007, 14.7″ from Kepler-4) is refused.
    kepler4 = SkyCoord(*position(index, "systems/Kepler-4.xml"), unit="deg")
    koi = SkyCoord(*position(index, "systems_kepler/KOI-0007.xml"), unit="deg")
    beyond = koi.directional_offset_by(kepler4.position_angle(koi), 8 * u.arcsec)
    m = match(index, record("Nova-8 b", ra=beyond.ra.deg, dec=beyond.dec.deg))
    assert m.kind is MatchKind.AMBIGUOUS
    assert m.candidates == [
        "systems/Kepler-4.xml:/system (Kepler-4)",
        "systems_kepler/KOI-0007.xml:/system (KOI-0007)",
    ]
    # Letters in systems_kepler/ are per file: "KOI-179 b" is KOI-179.02 in systems/ but
    # "KOI-0179 b" (KOI-179.01) in the Kepler copy.
    assert match(index, record("KOI-179 b")).path == "/system/star/planet[1]"
    assert match(index, record("KOI-179 b"), tiers=STRICT).kind is MatchKind.AMBIGUOUS


def test_planet_without_letter(index: AliasIndex) -> None:
    m = match(index, record("Earth"))
    assert (m.kind, m.file, m.path) == (
        MatchKind.PLANET,
        "systems/Sun.xml",
        "/system/star/planet[3]",
    )


# --- the commit, not the working tree ---------------------------------------------------------


def test_blobs_are_read_at_the_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "HEAD")
    kepler11 = repo / "systems" / "Kepler-11.xml"
    original = kepler11.read_text(encoding="utf-8")
    kepler11.write_text(original.replace("Kepler-11 b", "Uncommitted-1 b"), encoding="utf-8")
    shutil.copy(repo / "systems" / "HD 11506.xml", repo / "systems" / "Untracked.xml")
    (repo / "systems" / "Sun.xml").unlink()

    index = AliasIndex.build(repo)
    assert index.commit == first
    assert index.files == 50
    assert match(index, record("Kepler-11 b")).kind is MatchKind.PLANET
    assert match(index, record("Uncommitted-1 b")).kind is MatchKind.NONE
    assert index.system_text("systems/Kepler-11.xml") == original
    assert match(index, record("Earth")).kind is MatchKind.PLANET

    # An older commit can be pinned explicitly.
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "edits")
    assert match(AliasIndex.build(repo), record("Uncommitted-1 b")).kind is MatchKind.PLANET
    assert match(AliasIndex.build(repo, first), record("Uncommitted-1 b")).kind is MatchKind.NONE


def test_unreadable_file_is_reported_not_fatal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "systems" / "Broken.xml").write_text("<system><name>Broken</name>\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "broken")
    index = AliasIndex.build(repo)
    assert index.files == 50
    assert set(index.errors) == {"systems/Broken.xml"}


# --- refresh and persistence -----------------------------------------------------------------

PROBES = [
    record("Kepler-11 b"),
    record("Nova-5 b", host="KIC 6541920"),
    record("HD 11506 b"),
    record("HD 99999 b"),
    record("HD 99999 d", host="HD 99999"),
    record("Earth"),
    record("Terra"),
    record("Gliese 876 b"),
    record("Sol b", host="Sol"),
    record("KOI-0005 b"),
    record("Proxima b"),
    record("Proxima e", host="Proxima"),
]


def snapshot(index: AliasIndex) -> tuple[object, ...]:
    keys = {k: sorted(refs) for k, refs in index._keys.items()}
    matches = [match(index, p).model_dump() for p in PROBES]
    files = {f: (d.blob, d.objects, d.keys, d.ra, d.dec) for f, d in index._files.items()}
    return index.commit, index.files, keys, matches, files, index._pos_files


def test_refresh_equals_full_build(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    index = AliasIndex.build(repo)
    systems = repo / "systems"
    # modified: a new alias for Kepler-11 b
    kepler11 = systems / "Kepler-11.xml"
    kepler11.write_text(
        kepler11.read_text(encoding="utf-8").replace(
            "<name>KOI-157.06</name>", "<name>KOI-157.06</name>\n\t\t\t<name>Renamed-11 b</name>"
        ),
        encoding="utf-8",
    )
    # added: a copy of HD 11506 as a new system
    text = (systems / "HD 11506.xml").read_text(encoding="utf-8")
    (systems / "HD 99999.xml").write_text(
        text.replace("HD 11506", "HD 99999").replace("01 52 50", "03 00 00"), encoding="utf-8"
    )
    # deleted
    git(repo, "rm", "-q", "systems/Gliese 876.xml")
    # renamed (and changed a little, as a rename in OEC always is)
    git(repo, "mv", "systems/Sun.xml", "systems/Sol.xml")
    sol = systems / "Sol.xml"
    sol.write_text(
        sol.read_text(encoding="utf-8").replace("<name>Sun</name>", "<name>Sol</name>", 1),
        encoding="utf-8",
    )
    # and an uncommitted change after the commit, which neither may see
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "modify, add, delete, rename")
    status = git(repo, "diff", "--name-status", "-M", "HEAD~1", "HEAD")
    assert "R" in status and "\nA\t" in f"\n{status}" and "D\t" in status and "M\t" in status
    (systems / "Kepler-4.xml").write_text("<system><name>Dirty</name></system>\n")

    refreshed = index.refresh(repo)
    assert refreshed is index
    fresh = AliasIndex.build(repo)
    assert snapshot(refreshed) == snapshot(fresh)
    assert refreshed.commit == git(repo, "rev-parse", "HEAD")
    assert match(index, record("Renamed-11 b")).path == "/system/star/planet[1]"
    assert match(index, record("Gliese 876 b")).kind is MatchKind.NONE
    assert match(index, record("HD 99999 d", host="HD 99999")).file == "systems/HD 99999.xml"
    assert match(index, record("Earth")).file == "systems/Sol.xml"
    assert index.system_text("systems/Sol.xml") == sol.read_text(encoding="utf-8")
    with pytest.raises(KeyError):
        index.system_text("systems/Sun.xml")

    # Refreshing to the same commit changes nothing; back to the first commit restores it.
    before = snapshot(index)
    assert snapshot(index.refresh(repo)) == before
    first = git(repo, "rev-parse", "HEAD~1")
    assert snapshot(index.refresh(repo, first)) == snapshot(AliasIndex.build(repo, first))


def test_refresh_without_the_pinned_commit_rebuilds(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "systems" / "Sun.xml").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "no Sun")
    index = AliasIndex.build(repo)
    other = make_repo(tmp_path / "other")  # lacks the "no Sun" commit
    index.refresh(other)
    assert index.repo == other
    assert snapshot(index) == snapshot(AliasIndex.build(other))
    assert match(index, record("Earth")).kind is MatchKind.PLANET


def test_save_and_load(tmp_path: Path, repo: Path, index: AliasIndex) -> None:
    path = tmp_path / "index.pkl"
    index.save(path)
    loaded = AliasIndex.load(path)
    assert snapshot(loaded) == snapshot(index)
    assert loaded.system_text("systems/Kepler-11.xml") == index.system_text("systems/Kepler-11.xml")
    assert snapshot(pickle.loads(pickle.dumps(index))) == snapshot(index)
    # A copy of the repo elsewhere serves the same blobs.
    moved = shutil.copytree(repo, tmp_path / "moved")
    assert AliasIndex.load(path, repo=moved).repo == moved


def test_a_loaded_index_keeps_the_matching_digest_of_its_own_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    index = AliasIndex.build(repo)
    before = index.matching_digest()
    kepler11 = repo / "systems" / "Kepler-11.xml"
    text = kepler11.read_text(encoding="utf-8")
    kepler11.write_text(text.replace("<name>KOI-157.06</name>", "<name>KOI-157.6</name>"))
    git(repo, "commit", "-q", "-am", "an alias spelled anew")
    path = tmp_path / "index.pkl"

    index.refresh(repo).save(path)

    loaded = AliasIndex.load(path)
    assert loaded.matching_digest() == AliasIndex.build(repo).matching_digest() != before


def test_load_rejects_other_pickles(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"not": "an index"}))
    with pytest.raises(TypeError):
        AliasIndex.load(path)


def test_shared_keys(index: AliasIndex) -> None:
    shared = index.shared_keys(folders=("systems",))
    assert "kepler 138 b" in shared
    assert "kmt 2021 blg 240 b" in shared
    # a star and its system named alike are one host, not a shared key
    assert "hd 11506" not in shared
    kepler = index.shared_keys()
    assert "koi 7 1" in kepler  # Kepler-4 b and its KOI copy


# --- the full snapshot ------------------------------------------------------------------------

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SNAPSHOT = SHARED_DATA / "oec-snapshot-2026-08-22.tar.gz"
realdata = pytest.mark.skipif(not SNAPSHOT.exists(), reason=f"{SNAPSHOT} is not there")


@pytest.fixture(scope="module")
def snapshot_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tarfile

    repo = tmp_path_factory.mktemp("snapshot")
    with tarfile.open(SNAPSHOT) as tar:
        tar.extractall(repo, filter="data")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "snapshot a858d464")
    return repo


BUILD_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def snapshot_index(snapshot_repo: Path) -> AliasIndex:
    import time

    start = time.perf_counter()
    index = AliasIndex.build(snapshot_repo)
    BUILD_SECONDS["build"] = time.perf_counter() - start
    return index


@realdata
@pytest.mark.realdata
def test_snapshot_build_save_load(snapshot_index: AliasIndex, tmp_path: Path) -> None:
    import time

    index = snapshot_index
    path = tmp_path / "index.pkl"
    index.save(path)
    start = time.perf_counter()
    loaded = AliasIndex.load(path)
    load = time.perf_counter() - start
    built = BUILD_SECONDS["build"]
    print(f"\nbuild {built:.2f} s, load {load:.2f} s, {path.stat().st_size / 1e6:.1f} MB")
    assert index.files == 7035
    assert index.errors == {}
    assert snapshot(loaded) == snapshot(index)
    assert built < 30 and load < 10  # generous: shared CI machines are noisy


@realdata
@pytest.mark.realdata
def test_snapshot_every_planet_finds_itself(snapshot_index: AliasIndex) -> None:
    """Each primary name resolves to its own planet, unless OEC gives that name to another
    planet too; then the answer is AMBIGUOUS, never the other planet."""
    index = snapshot_index
    shared = {
        folder: {k for k, v in index.shared_keys((folder,)).items() if v[0].kind == "planet"}
        for folder in ("systems", "systems_kepler")
    }
    from common.oec.names import normalise

    outcome: dict[str, int] = {}
    for file in index.file_names():
        folder = file.partition("/")[0]
        for obj in index._files[file].objects:
            if obj.kind != "planet":
                continue
            m = match(index, record(obj.primary), tiers=((folder,),))
            if (m.kind, m.file, m.path) == (MatchKind.PLANET, file, obj.path):
                outcome["self"] = outcome.get("self", 0) + 1
                continue
            assert m.kind is MatchKind.AMBIGUOUS, (file, obj.primary, m)
            assert normalise(obj.primary) in shared[folder] or any(
                c.startswith(f"{file}:{obj.path} ") for c in m.candidates
            ), (file, obj.primary, m)
            outcome["ambiguous"] = outcome.get("ambiguous", 0) + 1
    print(f"\nprimary names: {outcome}")
    assert outcome["self"] > 9000
    assert outcome["ambiguous"] < 40


@realdata
@pytest.mark.realdata
def test_snapshot_shared_names_are_refused(snapshot_index: AliasIndex) -> None:
    index = snapshot_index
    counts = {}
    for folders in (("systems",), ("systems_kepler",), ("systems", "systems_kepler")):
        shared = index.shared_keys(folders)
        planets = {k: v for k, v in shared.items() if v[0].kind == "planet"}
        counts["+".join(folders)] = (len(planets), len(shared) - len(planets))
        for key, entries in planets.items():
            m = match(index, record(entries[0].name), tiers=(folders,))
            assert m.kind is MatchKind.AMBIGUOUS, (key, m)
            assert {e.label() for e in entries} <= set(m.candidates), key
    print(f"\nshared keys (planets, hosts): {counts}")
    assert counts["systems"][0] < 20 and counts["systems_kepler"] == (0, 0)


@realdata
@pytest.mark.realdata
def test_snapshot_refresh(snapshot_repo: Path, snapshot_index: AliasIndex, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--shared", str(snapshot_repo), str(repo)], check=True)
    index = pickle.loads(pickle.dumps(snapshot_index))
    kepler11 = repo / "systems" / "Kepler-11.xml"
    kepler11.write_text(
        kepler11.read_text(encoding="utf-8").replace("KOI-157.06", "KOI-157.60"), encoding="utf-8"
    )
    git(repo, "mv", "systems/Kepler-4.xml", "systems/Kepler-0004.xml")
    git(repo, "rm", "-q", "systems_kepler/KOI-0007.xml")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "edits")
    index.refresh(repo)
    assert snapshot(index) == snapshot(AliasIndex.build(repo))
    assert index.files == 7034
    assert match(index, record("KOI-157.60")).file == "systems/Kepler-11.xml"
    assert match(index, record("KOI-7.01"), tiers=STRICT).file == "systems/Kepler-0004.xml"
