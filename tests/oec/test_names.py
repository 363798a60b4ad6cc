"""The name normaliser: every rule with spellings taken from OEC files and the catalogues."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.oec.names import normalise, split_planet_name
from common.oec.tree import names_of, parse_system

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "oec"

SAME = [
    # case and spacing
    ("hd 1234b", "HD 1234 b"),
    ("GJ876", "GJ 876"),
    ("  Kepler-11   b ", "Kepler-11 b"),
    # unicode: NFKC superscripts, raw Greek letters, spelt and abbreviated Bayer letters
    ("α Cen", "alpha Cen"),
    ("α Cen", "Alpha Centauri"),
    ("α Cen", "alf Cen"),
    ("ρ¹ Cancri", "rho01 Cnc"),
    ("ρ¹ Cancri", "ρ1 Cnc"),
    ("Rho¹ Cancri A b", "ρ1 Cnc A b"),
    ("ε Ind Ba", "eps Indi Ba"),
    ("ο2 Eridani", "omi02 Eri"),
    ("ν Octantis", "nu. Oct"),
    ("Σ 2398", "Sigma 2398"),
    ("μ Arae", "Mu Ara"),
    ("τ Boo A b", "Tau Boötis A b"),
    ("γ1 Leonis", "Gamma-1 Leonis"),
    # HTML entities and diacritics
    ("24 Bo&ouml;", "24 Boö"),
    ("24 Bo&ouml;", "24 Boo"),
    ("Tau Boötis A", "Tau Bootis A"),
    ("Barnard&#39;s star", "Barnard's star"),
    # hyphens, dashes, dots, degree signs are separators
    ("Kepler-11", "Kepler 11"),
    ("WASP-12", "WASP 12"),
    ("2MASSJ13251211–6456207", "2MASS J13251211-6456207"),
    ("BD-10°3166", "BD-10 3166"),
    ("Kepler-16 (AB) b", "Kepler-16 AB b"),
    # catalogue prefixes
    ("Gliese 876", "GJ 876"),
    ("Gl 876", "GJ 876"),
    ("GL 551 b", "Gliese 551 b"),
    ("2M 044144", "2MASS J044144"),
    ("2MASS 0122-2439", "2MASS J0122-2439"),
    ("K00157.06", "KOI-157.06"),
    # KOI zero padding and planet designations
    ("KOI-0001", "KOI-1"),
    ("KOI 1.01", "KOI-0001.01"),
    ("KOI-0001 01", "KOI-1.01"),
    ("KOI-157.06", "KOI-0157 06"),
    ("TOI-0270.01", "TOI-270.01"),
    # apostrophes
    ("Barnard's star", "Barnards Star"),
    ("Barnard’s Star", "Barnard's star"),
    ("Innes' star b", "Innes star b"),
    # exoplanet.eu's component + letter, microlensing lens suffix, SIMBAD's star marker
    ("HD 11964 Ab", "HD 11964 A b"),
    ("KMT-2018-BLG-0030L b", "KMT-2018-BLG-0030 b"),
    ("*V1298 Tau e", "V1298 Tauri e"),
]

DIFFERENT = [
    ("2M 0441+23 b", "2M 0441-23 b"),  # a sign in a coordinate name
    ("BD+10 3166", "BD-10 3166"),
    ("HD 1234 5", "HD 12345"),  # numbers never merge
    ("HD 41004 A b", "HD 41004 b"),  # a component is not optional
    ("KOI-157 b", "KOI-157.01"),  # letters are not candidate numbers
    ("KOI-157.1", "KOI-157.10"),
    ("18 Del", "delta Del"),  # "Del" after a number is Delphinus, first it is delta
    ("ρ1 Cnc", "ρ2 Cnc"),
    ("Kepler-11", "Kepler-1 1"),
    ("GJ 667 C b", "GJ 667 b"),
    ("OGLE-2005-BLG-390L b", "OGLE-2005-BLG-391L b"),
    ("α Cen A", "α Cen B"),
    ("Kepler-16 b", "Kepler-16 (AB) b"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_key(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_key(a: str, b: str) -> None:
    assert normalise(a) != normalise(b)


def test_key_shape() -> None:
    assert normalise("HD 1234b") == "hd 1234 b"
    assert normalise("KOI-0001.01") == "koi 1 1"
    assert normalise("α Centauri C b") == "alpha cen c b"
    assert normalise("2M 0441+23 b") == "2 mass j 441 + 23 b"
    assert normalise("") == ""
    assert normalise(" - ") == ""


def test_case_folds_components_into_planet_letters() -> None:
    # Documented: a star "X B" and a planet "X b" share a key; the index keeps kinds apart.
    assert normalise("HD 41004 B") == normalise("HD 41004 b")


def test_spelt_greek_only_as_first_token() -> None:
    assert normalise("Kepler-11 Tau") == "kepler 11 tau"
    assert normalise("18 Del b") == "18 del b"
    assert normalise("Del 18") == "delta 18"  # a leading Del is a Bayer letter


def test_variants_of_real_files_collapse() -> None:
    """Spellings OEC itself lists for one object are one key (a sample from the fixtures)."""
    root = parse_system((FIXTURES / "systems" / "Alpha Centauri.xml").read_bytes())
    star_a = root.find("binary/binary/star")
    assert star_a is not None
    keys = {normalise(n) for n in names_of(star_a)}
    assert normalise("alf Cen A") in keys
    assert len({normalise(n) for n in ("Alpha Centauri A", "alf Cen A", "α Cen A")}) == 1
    root = parse_system((FIXTURES / "systems" / "55 Cancri.xml").read_bytes())
    planet = root.find(".//planet")
    assert planet is not None
    names = names_of(planet)
    assert len(names) == 25  # 55 Cnc b: 25 spellings of five designations
    keys = {normalise(n) for n in names}
    assert keys == {"55 cnc a b", "55 cnc b", "hr 3522 b", "rho 1 cnc a b", "rho 1 cnc b"}
    assert normalise("ρ¹ Cnc A b") in keys


def test_raw_non_ascii_fixture_names() -> None:
    raw = [
        n
        for path in sorted((FIXTURES / "systems").glob("*.xml"))
        for el in parse_system(path.read_bytes()).iter("system", "binary", "star", "planet")
        for n in names_of(el)
        if not n.isascii()
    ]
    assert raw, "the fixtures must hold raw non-ASCII names"
    for name in raw:
        key = normalise(name)
        assert key.isascii(), (name, key)


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("Kepler-11 b", ("Kepler-11", "b")),
        ("HD 1234b", ("HD 1234", "b")),
        ("HD 11964 Ab", ("HD 11964 A", "b")),
        ("Kepler-16 (AB) b", ("Kepler-16 (AB)", "b")),
        ("NSVS 7826147 (AB)b", ("NSVS 7826147 (AB)", "b")),
        ("KOI-157.06", ("KOI-157", "06")),
        ("KOI-0001 01", ("KOI-0001", "01")),
        ("Barnard's star", None),
        ("HD 41004 B", None),  # a star
        ("XX Mu", None),
        ("WISEA J083011.95+283716.0", None),
        ("Mercury", None),
    ],
)
def test_split_planet_name(name: str, split: tuple[str, str] | None) -> None:
    assert split_planet_name(name) == split


def test_split_uppercase_only_on_request() -> None:
    assert split_planet_name("DH Tau B") is None
    assert split_planet_name("DH Tau B", uppercase=True) == ("DH Tau", "B")


def test_split_and_join_agree_with_normalise() -> None:
    for name in ("Kepler-11 b", "HD 11964 Ab", "GJ 667C c", "KOI-157 b"):
        split = split_planet_name(name)
        assert split is not None
        host, letter = split
        assert normalise(f"{host} {letter}") == normalise(name)
