"""The quality report's disagreements, on real rows of both sample catalogues merged against
real OEC files."""

from __future__ import annotations

import datetime as dt

from common import quality, rules
from common.records import Source, Value
from tests.qualityutil import dated, patch, record

NASA, EU = "nasa.csv", "eu.csv"


def test_fields_both_catalogues_change_differently_are_listed_with_the_fold_winner() -> None:
    # BD+20 594 b: NASA (2024-10-15, row 93) and exoplanet.eu (2021-02-05, row 5) both
    # change the system's distance (179.461 vs 180.39) and the planet's temperature
    # (546 vs 386) in a file dated 2016.
    patches = [patch(record(NASA, "BD+20 594 b")), patch(record(EU, "BD+20 594 b"))]
    found, both = quality.disagreements(patches)
    by_key = {(d.path, d.field): d for d in found}
    assert set(by_key) == {("/system", "distance"), ("/system/star/planet", "temperature")}
    distance = by_key[("/system", "distance")]
    assert distance.file == "systems/BD+20 594.xml"
    assert distance.object == "BD+20 594"
    assert (distance.nasa.new.value, distance.eu.new.value) == ("179.461", "180.39")
    assert (distance.nasa.source_row, distance.eu.source_row) == (93, 5)
    assert distance.winner is Source.NASA  # later source date
    assert distance.relative is not None and abs(distance.relative - 0.929 / 180.39) < 1e-9
    assert by_key[("/system/star/planet", "temperature")].relative == 160 / 546
    assert both >= len(found)
    # The winner is what rules.fold keeps; the planet's temperature (NASA 546 ±19 K, a bare
    # 386 K from exoplanet.eu) is a conflict, which has none. So is the star's V magnitude:
    # OEC's 11.038 ±0.047 and exoplanet.eu's 11 against NASA's 10.849 ±0.012, 4σ away.
    folded = rules.fold(patches, None)
    kept = {(c.path, c.field): c for c in folded.changes}
    conflicts = [c.model_copy(update={"file": distance.file}) for c in folded.conflicts]
    assert {(c.path, c.field) for c in conflicts} == {
        ("/system/star/planet", "temperature"),
        ("/system/star", "magV"),
    }
    found, _ = quality.disagreements(patches, conflicts)
    for d in found:
        if d.winner is None:
            assert (d.path, d.field) not in kept
        else:
            assert kept[(d.path, d.field)].source is d.winner


def test_the_later_source_wins_and_nasa_wins_ties() -> None:
    nasa = patch(record(NASA, "BD+20 594 b"))
    newer_eu = patch(dated(record(EU, "BD+20 594 b"), dt.date(2025, 3, 1)))
    found, _ = quality.disagreements([nasa, newer_eu])
    assert {d.winner for d in found} == {Source.EU}
    same_day = patch(dated(record(EU, "BD+20 594 b"), dt.date(2024, 10, 15)))
    found, _ = quality.disagreements([same_day, nasa])  # order does not matter
    assert {d.winner for d in found} == {Source.NASA}


def test_one_catalogue_alone_and_values_within_tolerance_are_not_disagreements() -> None:
    # GJ 1151 c: both propose changes, none beyond tolerance of each other.
    patches = [patch(record(NASA, "GJ 1151 c")), patch(record(EU, "GJ 1151 c"))]
    found, both = quality.disagreements(patches)
    assert found == []
    assert both > 0
    only_nasa = [patch(record(NASA, "BD+20 594 b"))]
    assert quality.disagreements(only_nasa) == ([], 0)


def test_a_star_field_proposed_by_each_planet_row_is_one_disagreement() -> None:
    # EPIC 211822797 (exoplanet.eu: K2-103 b): the star's temperature comes with each
    # catalogue's planet row; the same row proposed twice (a redelivery, a second planet)
    # is still one pair.
    nasa = patch(record(NASA, "EPIC 211822797 b"))
    eu = patch(record(EU, "K2-103 b"))
    found, _ = quality.disagreements([nasa, eu, nasa])
    star = [d for d in found if d.path == "/system/star"]
    assert [d.field for d in star] == ["temperature"]
    assert (star[0].nasa.new.value, star[0].eu.new.value) == ("4057", "4148.21")


def test_differ_follows_same_value_and_the_merge_rules_tolerances() -> None:
    assert not quality.differ("distance", Value(value="179.46"), Value(value="179.5"))
    assert quality.differ("distance", Value(value="179.461"), Value(value="180.39"))
    # CoRoT-31's V magnitude: 15.479 vs 15.7 is beyond photometric scatter, 15.5 is not.
    assert quality.differ("magV", Value(value="15.479"), Value(value="15.7"))
    assert not quality.differ("magV", Value(value="15.479"), Value(value="15.5"))
    assert quality.differ("mass", Value(value="3.84", type="msini"), Value(value="3.84"))
    assert quality.differ("eccentricity", Value(upperlimit="0.25"), Value(value="0.1"))
    assert not quality.differ("eccentricity", Value(upperlimit="0.25"), Value(upperlimit="0.25"))
    assert quality.differ("spectraltype", Value(value="M V"), Value(value="M4V"))
    assert quality.relative_difference(Value(value="M V"), Value(value="M4V")) is None


def test_the_report_keeps_each_catalogues_counts_and_rows() -> None:
    from common.messages import CatalogueCounts, RunPlanned
    from common.records import RejectedRow

    rejected = RejectedRow(file="eu.csv", row=12, column="mass", reason="not a number: 'x'")
    planned = {
        source: RunPlanned(
            run_id="r",
            source=source,
            catalogue=f"{source}.csv",
            commit="c0ffee",
            planets=1,
            counts=CatalogueCounts(rows=3, rejected=int(source is Source.EU)),
            rejected=[rejected] if source is Source.EU else [],
            ambiguous=["Kepler-11 b"] if source is Source.NASA else [],
        )
        for source in (Source.EU, Source.NASA)
    }
    counts = {Source.NASA: CatalogueCounts(rows=3, changed=1)}
    patches = [patch(record(NASA, "BD+20 594 b")), patch(record(EU, "BD+20 594 b"))]
    report = quality.quality_report("r", planned, counts, {}, patches)
    assert [c.source for c in report.catalogues] == [Source.NASA, Source.EU]
    assert report.catalogues[0].counts.changed == 1  # the publisher's counts win
    assert report.catalogues[0].ambiguous == ["Kepler-11 b"]
    assert report.catalogues[1].rejected == [rejected]
    assert len(report.disagreements) == 2
