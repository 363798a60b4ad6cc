"""What a maintainer must be able to merge unread: the real rows of issue 8 that made OEC
worse, through the whole embedded run on the real OEC files they touch.

The fixture (``tests/fixtures/trust``, cut by its ``cut.py``) holds those systems from the
OEC snapshot and every row of their hosts from the NASA 2024-10-15 and exoplanet.eu 2025-05
downloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from common.changes import Conflict
from common.oec import tree
from common.proposals import Proposal
from common.records import Source
from services import embedded
from services.publisher import reports
from services.publisher.handler import RunState
from tests.gitutil import make_repo
from tests.paths import FIXTURES

TRUST = FIXTURES / "trust"
PLANET = "/system/star/planet"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunState:
    work = tmp_path_factory.mktemp("trust")
    repo = make_repo(work / "oec", TRUST / "oec")
    locations = {Source.NASA: str(TRUST / "nasa.csv"), Source.EU: str(TRUST / "eu.csv")}
    console = Console(file=open(work / "progress.txt", "w"))  # noqa: SIM115
    return embedded.run(repo, locations, work / "outbox", max_prs=0, console=console)


def proposal(run: RunState, system: str) -> Proposal | None:
    file = f"systems/{system}.xml"
    return next((p.proposal for p in run.published if p.proposal.file == file), None)


def changed(run: RunState, system: str, obj: str, field: str) -> bool:
    found = proposal(run, system)
    return found is not None and any(c.object == obj and c.field == field for c in found.changes)


def conflict(run: RunState, system: str, obj: str, field: str) -> Conflict:
    return next(
        c
        for c in run.conflicts
        if c.file == f"systems/{system}.xml" and c.object == obj and c.field == field
    )


def values(found: Conflict) -> set[tuple[Source, str | None]]:
    return {(v.source, v.value.value) for v in found.values}


def test_a_value_without_an_uncertainty_never_replaces_one_with(run: RunState) -> None:
    assert not changed(run, "11 Com", "11 Com", "temperature")  # 4742 ±100 -> 4874
    assert not changed(run, "WASP-103", "WASP-103", "distance")  # 470 ±35 -> 375.6
    assert not changed(run, "70 Vir", "70 Vir", "distance")  # 18.1 ±0.2 -> 22


def test_oec_keeps_its_value_when_the_other_catalogue_agrees_with_it(run: RunState) -> None:
    # TOI-5205 b: exoplanet.eu 0.94 ±0.04 against OEC's and NASA's 1.030 ±0.030.
    assert not changed(run, "TOI-5205", "TOI-5205 b", "radius")
    radius = conflict(run, "TOI-5205", "TOI-5205 b", "radius")
    assert radius.reason == "OEC's value agrees with NASA"
    assert radius.oec is not None and radius.oec.value == "1.030"
    assert {Source.NASA, Source.EU} <= {v.source for v in radius.values}
    assert (Source.EU, "0.94") in values(radius)
    # WASP-83 b: exoplanet.eu's typo 4.071252 for 4.971252 d.
    assert not changed(run, "WASP-83", "WASP-83 b", "period")
    period = conflict(run, "WASP-83", "WASP-83 b", "period")
    assert (Source.EU, "4.071252") in values(period)
    # kappa CrB b: NASA's bare 2 over OEC's m sin i 1.6, which exoplanet.eu repeats.
    assert not changed(run, "kappa CrB", "kappa CrB b", "mass")


def test_angles_are_compared_modulo_360(run: RunState) -> None:
    assert not changed(run, "55 Cancri", "55 Cancri c", "periastron")  # 2.4 -> 356


def test_a_period_that_jumps_is_another_solution_and_none_of_its_values_are_used(
    run: RunState,
) -> None:
    # GJ 3138 b and c are swapped between OEC and NASA.
    for planet in ("GJ 3138 b", "GJ 3138 c"):
        assert not changed(run, "GJ 3138", planet, "period")
        assert not changed(run, "GJ 3138", planet, "semimajoraxis")
        assert conflict(run, "GJ 3138", planet, "period").reason.startswith("would move")
    # 14 Her c: 9,886 d in OEC, 15,733 d at NASA, 52,160 d at exoplanet.eu; exoplanet.eu's
    # periastron 0.01 belongs to its own orbit.
    period = conflict(run, "14 Her", "14 Her c", "period")
    assert {v.source for v in period.values} == {Source.NASA, Source.EU}
    assert not changed(run, "14 Her", "14 Her c", "periastron")
    assert not changed(run, "14 Her", "14 Her c", "period")


def test_a_refinement_goes_ahead_against_an_agreeing_catalogue(run: RunState) -> None:
    # XO-1: OEC's distance 200 has no uncertainty, exoplanet.eu repeats it with ±20; NASA's
    # Gaia distance 163.553 +0.622 -0.617 is better than both and within their errors.
    found = proposal(run, "XO-1")
    assert found is not None
    distance = next(c for c in found.changes if c.field == "distance")
    assert (distance.old, distance.new.value) == (distance.old, "163.553")
    assert distance.source is Source.NASA


def test_new_planets_are_added_once_and_without_an_assumed_circular_orbit(
    run: RunState,
) -> None:
    gj = proposal(run, "GJ 3998")
    assert gj is not None and [p.name for p in gj.new_planets] == ["GJ 3998 d"]
    planet_d = next(
        p for p in tree.parse_system(gj.text).iter("planet") if "d" in p.findtext("name")
    )
    assert planet_d.find("eccentricity") is None  # exoplanet.eu's bare 0 is an assumption
    kepler_451 = proposal(run, "2M 1938+4603")
    assert kepler_451 is not None
    root = tree.parse_system(kepler_451.text)
    added = [tree.names_of(p) for p in root.iter("planet")][1:]
    assert len(added) == 2, added  # c and d, each once, whichever catalogue names them
    teegarden = proposal(run, "GAT 1370")
    assert teegarden is not None
    names = [tree.names_of(p)[0] for p in tree.parse_system(teegarden.text).iter("planet")]
    assert len(names) == len(set(names)) == 3, names


def test_conflicts_are_in_the_pull_request_of_their_system_largest_first(
    run: RunState,
) -> None:
    found = proposal(run, "WASP-83")
    assert found is not None
    body = found.body
    assert "### Not changed, for you to decide" in body
    section = body[body.index("### Not changed") :]
    assert "4.071252" in section and "4.971252" in section
    sizes = [c.size for c in run.conflicts]
    assert sizes == sorted(sizes, reverse=True)


def test_the_report_lists_every_conflict_with_all_values(run: RunState) -> None:
    report = reports.report(run)
    listed = {(c["file"], c["object"], c["field"]) for c in report["conflicts"]}
    assert ("systems/WASP-83.xml", "WASP-83 b", "period") in listed
    first = report["conflicts"][0]
    assert set(first) >= {"file", "object", "path", "field", "reason", "oec", "values", "size"}
    assert all({"source", "shown", "source_row"} <= set(v) for v in first["values"])


def test_proposals_only_change_what_the_rules_allow(run: RunState, tmp_path: Path) -> None:
    """Every update of the run is better than what it replaces: it has an uncertainty."""
    for published in run.published:
        for change in published.proposal.changes:
            if change.kind.value == "updated" and change.field != "lastupdate":
                old, new = change.old, change.new
                assert old is not None
                if old.errorplus is not None and new.value is not None:
                    assert new.errorplus is not None, (published.proposal.file, change)
