"""The maintainer's own practice, on the real rows of planets he added by hand in 2021.

tests/fixtures/practice holds four files of OEC as it stood on 2020-12-29 and the NASA
2024-10 and exoplanet.eu 2022-04 rows of planets the maintainer then added (its cut.py says
which). The whole replay is ../shared/tools/maintainer_history.py; these are its cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from common import proposals
from common.catalogues import read_catalogue_file
from common.gitrepo import read_files
from common.oec import tree
from common.records import PlanetRecord
from services.cli import app
from tests.gitutil import git, make_repo
from tests.paths import FIXTURES

PRACTICE = FIXTURES / "practice"
FROM_NASA = proposals.DESCRIPTION.format("the NASA Exoplanet Archive")
FROM_EU = proposals.DESCRIPTION.format("the exoplanet.eu website")
FROM_BOTH = proposals.DESCRIPTION.format("the NASA Exoplanet Archive and the exoplanet.eu website")


class Run:
    def __init__(self, repo: Path, report: dict) -> None:
        self.repo = repo
        self.report = report
        self.systems = {s["file"]: s for s in report["systems"]}

    def root(self, file: str) -> etree._Element:
        text = read_files(self.repo, self.systems[file]["branch"], [file])[file]
        assert text is not None
        return tree.parse_system(text)

    def planet(self, file: str, name: str) -> etree._Element:
        (planet,) = [p for p in self.root(file).iter("planet") if name in tree.names_of(p)]
        return planet


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("practice")
    repo = make_repo(tmp / "oec", PRACTICE / "oec")
    report = tmp / "report.json"
    args = ["run", "--oec-repo", str(repo), "--report", str(report), "--max-prs", "0"]
    args += ["--nasa", str(PRACTICE / "nasa.csv"), "--eu", str(PRACTICE / "eu.csv")]
    args += ["--outbox", str(tmp / "outbox")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return Run(repo, json.loads(report.read_text(encoding="utf-8")))


def lists(planet: etree._Element) -> list[str]:
    return [e.text or "" for e in planet.findall("list")]


def test_a_confirmed_koi_gets_its_own_file_and_the_koi_file_stays(run: Run) -> None:
    assert run.systems["systems/Kepler-1704.xml"]["new"]
    kepler1705 = run.root("systems/Kepler-1705.xml")
    assert tree.names_of(kepler1705.find("star")) == ["Kepler-1705", "KOI-4772"]
    # exoplanet.eu's KOI-4772 b is Kepler-1705 b; the KOI file's own "KOI-4772 b" is another
    # candidate (3.38 d): letters in systems_kepler/ are per file, and the file is left alone.
    assert [tree.names_of(p) for p in kepler1705.iter("planet")] == [
        ["Kepler-1705 b", "KOI-4772 b"],
        ["Kepler-1705 c", "KOI-4772 c"],
    ]
    touched = {s["file"] for s in run.report["systems"]}
    assert not {f for f in touched if f.startswith("systems_kepler/")}
    head = git(run.repo, "rev-parse", "HEAD").strip()
    for system in run.report["systems"]:
        changed = git(run.repo, "diff", "--name-only", head, system["branch"]).split("\n")
        assert not [f for f in changed if f.startswith("systems_kepler/")]


def test_brightness_modulation_planets_are_filed_as_transit(run: Run) -> None:
    for star in ("KIC 10068024", "KIC 5479689", "KIC 8121913"):
        planet = run.planet(f"systems/{star}.xml", f"{star} b")
        assert planet.findtext("discoverymethod") == "transit"
        assert planet.find("radius") is None  # NASA's is a model: the planet does not transit


@pytest.mark.parametrize("name", ["OGLE-2016-BLG-1928", "WISEA J083011.95+283716.0"])
def test_an_object_without_a_star_is_a_system_and_a_star_of_its_name(run: Run, name: str) -> None:
    root = run.root(f"systems/{name}.xml")
    (star,) = root.findall("star")
    (planet,) = star.findall("planet")
    assert tree.names_of(root) == tree.names_of(star) == [name]
    assert tree.names_of(planet)[0] == name
    assert lists(planet) == ["Confirmed planets"]


def test_a_brown_dwarf_without_a_star_is_not_added(run: Run) -> None:
    refused = {n["planet"]: n["reason"] for n in run.report["not_added"]}
    for name in ("Teide 1", "2MASS J0153-6744"):  # 54 MJup; 17 ±2 MJup
        assert "not known to be a planetary-mass object" in refused[name]
        assert f"systems/{name}.xml" not in run.systems


def test_a_new_system_is_named_by_the_row_that_listed_it_first(run: Run) -> None:
    # exoplanet.eu dated these rows in 2020-21, NASA's table is dated 2024-10-15.
    for file in (
        "HIP 3206",  # NASA: HD 3765
        "TOI-1098",  # NASA: HD 110082
        "KMT-2019-BLG-1715",  # NASA: KMT-2019-BLG-1715L
        "GJ 720 A",  # exoplanet.eu writes GJ 720A: NASA's spelling of the same name
        "KMT-2018-BLG-1996L",  # ... and KMT-2018:BLG-1996L
        "OGLE-2018-BLG-0516",  # ... and OGLE--2018-BLG-0516, a typo the maintainer copied
        "TOI-1431",  # TOI-1431/MASCARA-5: the first of two names
    ):
        assert run.systems[f"systems/{file}.xml"]["new"], file
    assert not {"systems/HD 3765.xml", "systems/HD 110082.xml"} & run.systems.keys()
    # The planet is named like its system; the other catalogue's names stay as aliases.
    assert tree.names_of(run.planet("systems/HIP 3206.xml", "HIP 3206 b")) == [
        "HIP 3206 b",
        "HD 3765 b",
    ]
    assert "MASCARA-5" in tree.names_of(run.root("systems/TOI-1431.xml").find("star"))


def test_a_new_planet_is_named_as_oec_names_its_hosts_planets(run: Run) -> None:
    # NASA's KOI-1831 d orbits Kepler-324, which OEC also calls KOI-1831.
    planet = run.planet("systems/Kepler-324.xml", "Kepler-324 d")
    assert tree.names_of(planet) == ["Kepler-324 d", "KOI-1831 d"]


def test_one_lens_seen_under_three_events_is_one_planet(run: Run) -> None:
    (planet,) = run.root("systems/OGLE-2018-BLG-0932.xml").iter("planet")
    assert tree.names_of(planet) == [
        "OGLE-2018-BLG-0932 b",
        "OGLE-2018-BLG-0932L b",
        "KMT-2018-BLG-2087 b",
        "MOA-2018-BLG-163 b",
    ]


def test_new_planets_carry_the_maintainers_description_line(run: Run) -> None:
    def description(file: str, name: str) -> str | None:
        return run.planet(file, name).findtext("description")

    assert description("systems/Kepler-1704.xml", "Kepler-1704 b") == FROM_NASA
    assert description("systems/OGLE-2016-BLG-1928.xml", "OGLE-2016-BLG-1928") == FROM_EU
    assert description("systems/Kepler-1705.xml", "Kepler-1705 b") == FROM_BOTH
    assert description("systems/TOI-561.xml", "TOI-561 f") == FROM_EU
    # Byte for byte the line the maintainer wrote on TOI-561 b in 2020 (left as it is).
    assert description("systems/TOI-561.xml", "TOI-561 b") == FROM_EU


def test_controversial_planets_join_their_host_listed_so(run: Run) -> None:
    # NASA flags d and e, exoplanet.eu f: the maintainer listed all three Controversial.
    for name in ("TOI-561 d", "TOI-561 e", "TOI-561 f"):
        assert lists(run.planet("systems/TOI-561.xml", name)) == ["Controversial"]
    assert lists(run.planet("systems/TOI-561.xml", "TOI-561 b")) == ["Confirmed planets"]


def test_the_same_planet_under_another_name_is_no_new_system(run: Run) -> None:
    # NASA's K2-329 b is OEC's EPIC 246193072 b: same star (0″), letter and period.
    assert "systems/K2-329.xml" not in run.systems
    assert all(not c["ambiguous_rows"] for c in run.report["catalogues"].values())


def test_one_planet_under_two_spellings_is_written_once() -> None:
    # exoplanet.eu 2025 calls NASA's TOI-1248 b "TOI-1248 Ab", around "TOI-1248 A".
    rows: list[PlanetRecord] = []
    for name, planet in (("nasa.csv", "TOI-1248 b"), ("eu_2025.csv", "TOI-1248 Ab")):
        rows += [r for r in read_catalogue_file(PRACTICE / name).records if r.name == planet]
    made, refused = proposals.new_system_proposals(rows, "base", set())
    assert refused == []
    (proposal,) = made
    assert proposal.file == "systems/TOI-1248.xml"  # NASA's row is the older one here
    (planet,) = tree.parse_system(proposal.text).iter("planet")
    assert tree.names_of(planet) == ["TOI-1248 b", "TOI-1248 Ab"]
