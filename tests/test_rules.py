"""Merge rules on real OEC files with values from real catalogue rows."""

import datetime as dt

from common import rules
from common.catalogues import read_catalogue_file
from common.changes import ChangeKind
from common.matching import Match, MatchKind
from common.oec.tree import find, parse_system, value_of
from common.records import PlanetRecord, Source, Value
from tests.paths import FIXTURES, SAMPLE

ELEVEN_COM = (SAMPLE / "oec/systems/11 Com.xml").read_text(encoding="utf-8")
PLANET = "/system/star/planet"
NASA_DATE = dt.date(2024, 10, 15)  # the PSCompPars download's header date


def nasa_11_com_b(**planet: Value) -> PlanetRecord:
    """11 Com b as PSCompPars_2024-10-15 has it (row 90 of the web download)."""
    values = {
        "period": Value(value="323.21", errorminus="0.05", errorplus="0.06"),
        "semimajoraxis": Value(value="1.178"),
        "mass": Value(value="15.464", errorminus="0.125", errorplus="0.123", type="msini"),
        "eccentricity": Value(value="0.238", errorminus="0.007", errorplus="0.007"),
        "discoverymethod": Value(value="RV"),
        "discoveryyear": Value(value="2007"),
    }
    values.update(planet)
    return PlanetRecord(
        source=Source.NASA,
        catalogue="PSCompPars_2024-10-15_webUI_defaultcols.csv",
        row=90,
        name="11 Com b",
        host="11 Com",
        updated=NASA_DATE,
        dated_by="NASA catalogue date",
        planet=values,
        star={"temperature": Value(value="4874"), "radius": Value(value="13.76")},
        system={"distance": Value(value="93.1846", errorminus="1.9238", errorplus="1.9238")},
    )


MATCH = Match(kind=MatchKind.PLANET, file="systems/11 Com.xml", path=PLANET, via="name")


def by_field(result: rules.MergeResult) -> dict[tuple[str, str], ChangeKind]:
    assert result.patch is not None
    return {(c.path, c.field): c.kind for c in result.patch.changes}


def test_newer_different_values_replace_and_missing_ones_are_added() -> None:
    result = rules.merge(nasa_11_com_b(), MATCH, ELEVEN_COM, "c0ffee")
    kinds = by_field(result)
    assert kinds[(PLANET, "period")] is ChangeKind.UPDATED  # 326.03 -> 323.21, 24/10 > 15/09
    # 0.231 ±0.005 -> 0.238 ±0.007: less precise and within 1σ combined: churn, not news.
    assert (PLANET, "eccentricity") not in kinds
    assert kinds[(PLANET, "mass")] is ChangeKind.UPDATED  # msini 19.4 -> 15.464
    # 4742 ±100 K -> a bare 4874 K, 1.29 ±0.05 AU -> a bare 1.178 AU: a value without an
    # uncertainty never replaces one that has it.
    assert ("/system/star", "temperature") not in kinds
    assert (PLANET, "semimajoraxis") not in kinds
    assert kinds[("/system", "distance")] is ChangeKind.UPDATED
    # Text fields are a maintainer's call: 2008 in OEC stays although NASA says 2007.
    assert (PLANET, "discoveryyear") not in kinds
    assert (PLANET, "discoverymethod") not in kinds


def test_older_source_only_adds() -> None:
    record = nasa_11_com_b(radius=Value(value="1.09"))
    record = record.model_copy(update={"updated": dt.date(2015, 1, 1)})
    kinds = by_field(rules.merge(record, MATCH, ELEVEN_COM, "c0ffee"))
    assert kinds == {(PLANET, "radius"): ChangeKind.ADDED}


def test_values_within_tolerance_are_unchanged() -> None:
    record = nasa_11_com_b(
        period=Value(value="326.0300000", errorminus="0.32", errorplus="0.32"),
        semimajoraxis=Value(value="1.2905"),
        mass=Value(value="19.4", errorminus="1.5", errorplus="1.5", type="msini"),
        eccentricity=Value(value="0.231"),
    )
    record = record.model_copy(update={"star": {}, "system": {}})
    result = rules.merge(record, MATCH, ELEVEN_COM, "c0ffee")
    assert not result.changed


def test_limit_never_replaces_measurement_and_msini_never_replaces_true_mass() -> None:
    old = Value(value="1.0", errorminus="0.1", errorplus="0.1")
    assert rules.decide("mass", old, Value(upperlimit="2"), NASA_DATE, dt.date(2015, 1, 1)) is None
    msini = Value(value="2.0", type="msini")
    assert rules.decide("mass", old, msini, NASA_DATE, dt.date(2015, 1, 1)) is None
    true_mass = Value(value="2.0", errorminus="0.2", errorplus="0.3")
    assert (
        rules.decide("mass", msini, true_mass, NASA_DATE, dt.date(2015, 1, 1)) is ChangeKind.UPDATED
    )
    # kappa CrB b: OEC's m sin i 1.6 is not replaced by NASA's bare 2.
    bare = Value(value="2")
    old_msini = Value(value="1.6", type="msini")
    assert rules.decide("mass", old_msini, bare, NASA_DATE, dt.date(2015, 11, 2)) is None
    limit = Value(upperlimit="0.25")
    measured = Value(value="0.1", errorminus="0.02", errorplus="0.03")
    assert rules.decide("eccentricity", limit, measured, NASA_DATE, dt.date(2015, 1, 1))
    # WASP-119 b: OEC's upper limit 0.058 is not replaced by exoplanet.eu's bare "0.058".
    wasp_119 = Value(upperlimit="0.058")
    bare = Value(value="0.058")
    assert rules.decide("eccentricity", wasp_119, bare, NASA_DATE, dt.date(2015, 1, 1)) is None


def test_undated_objects_are_only_completed() -> None:
    old = Value(value="1.0")
    assert rules.decide("mass", old, Value(value="3.0"), NASA_DATE, None) is None
    assert rules.decide("mass", None, Value(value="3.0"), None, None) is ChangeKind.ADDED


def test_implausible_values_are_dropped_with_a_reason() -> None:
    eccentricity = Value(value="1.2", errorminus="0.1", errorplus="0.1")
    record = nasa_11_com_b(eccentricity=eccentricity, radius=Value(value="-1"))
    result = rules.merge(record, MATCH, ELEVEN_COM, "c0ffee")
    kinds = by_field(result)
    assert (PLANET, "eccentricity") not in kinds
    assert (PLANET, "radius") not in kinds
    assert any("eccentricity 1.2" in note for note in result.notes)
    assert any("radius -1" in note for note in result.notes)


def test_confirmed_planet_above_60_jupiter_masses_is_not_written() -> None:
    assert rules.implausible("mass", Value(value="75"), rules.NEW_OBJECT_STATUS)
    assert rules.implausible("mass", Value(value="75"), None) is None


def test_fold_prefers_newer_source_then_nasa_and_moves_lastupdate_forward() -> None:
    nasa = rules.merge(nasa_11_com_b(), MATCH, ELEVEN_COM, "c0ffee").patch
    eu_record = nasa_11_com_b(period=Value(value="323.2", errorminus="0.1", errorplus="0.1"))
    eu_record = eu_record.model_copy(
        update={"source": Source.EU, "updated": dt.date(2025, 3, 1), "row": 7}
    )
    eu = rules.merge(eu_record, MATCH, ELEVEN_COM, "c0ffee").patch
    assert nasa is not None and eu is not None
    folded = rules.fold([nasa, eu], ELEVEN_COM)
    chosen = {(c.path, c.field): c for c in folded.changes}
    assert chosen[(PLANET, "period")].source is Source.EU  # 2025-03-01 beats 2024-10-15
    assert chosen[(PLANET, "lastupdate")].new.value == "25/03/01"
    assert chosen[(PLANET, "lastupdate")].old == Value(value="15/09/20")
    assert len([c for c in folded.changes if c.field == "period"]) == 1

    same_day = eu_record.model_copy(update={"updated": NASA_DATE})
    eu_same_day = rules.merge(same_day, MATCH, ELEVEN_COM, "c0ffee").patch
    assert eu_same_day is not None
    folded = rules.fold([eu_same_day, nasa], ELEVEN_COM)
    assert {(c.path, c.field): c for c in folded.changes}[(PLANET, "period")].source is Source.NASA


def test_lastupdate_never_moves_backwards() -> None:
    root = parse_system(ELEVEN_COM)
    find(root, PLANET).find("lastupdate").text = "25/01/01"
    text = ELEVEN_COM.replace("<lastupdate>15/09/20", "<lastupdate>25/01/01")
    record = nasa_11_com_b(radius=Value(value="1.09")).model_copy(update={"updated": NASA_DATE})
    patch = rules.merge(record, MATCH, text, "c0ffee").patch
    assert patch is not None
    folded = rules.fold([patch], text)
    assert [c.field for c in folded.changes if c.path == PLANET] == ["radius"]
    assert value_of(find(parse_system(text), PLANET).find("lastupdate")).value == "25/01/01"


def test_new_planet_goes_to_the_host_controversial_too_retracted_not() -> None:
    record = nasa_11_com_b().model_copy(update={"name": "11 Com c", "aliases": []})
    host = Match(kind=MatchKind.HOST, file="systems/11 Com.xml", path="/system/star")
    patch = rules.merge(record, host, ELEVEN_COM, "c0ffee").patch
    assert patch is not None
    assert [p.record.name for p in patch.new_planets] == ["11 Com c"]
    assert patch.new_planets[0].parent_path == "/system/star"

    controversial = record.model_copy(update={"status": "Controversial"})
    patch = rules.merge(controversial, host, ELEVEN_COM, "c0ffee").patch
    assert patch is not None
    assert [p.record.status for p in patch.new_planets] == ["Controversial"]
    retracted = record.model_copy(update={"status": "Retracted planet candidate"})
    assert not rules.merge(retracted, host, ELEVEN_COM, "c0ffee").changed
    # ... and neither founds a new system
    for status in ("Controversial", "Retracted planet candidate"):
        alone = record.model_copy(update={"status": status})
        assert not rules.merge(alone, Match(kind=MatchKind.NONE), None, "c0ffee").changed


def test_ambiguous_matches_change_nothing() -> None:
    ambiguous = Match(kind=MatchKind.AMBIGUOUS, candidates=["a", "b"])
    result = rules.merge(nasa_11_com_b(), ambiguous, None, "c0ffee")
    assert not result.changed
    assert "ambiguous" in result.notes[0]


def test_improves_needs_more_precision_or_a_significant_difference() -> None:
    old = Value(value="0.05129", errorminus="0.01919", errorplus="0.01868")  # BD+20 594 b
    assert not rules.improves("mass", old, Value(value="0.07", errorminus="0.03", errorplus="0.03"))
    assert rules.improves("mass", old, Value(value="0.0497", errorminus="0.005", errorplus="0.005"))
    assert rules.improves("mass", old, Value(value="0.2", errorminus="0.03", errorplus="0.03"))
    # AB Aur's distance: OEC's 144.0 has no uncertainty, Gaia's has one; a bare number
    # says no more than OEC's.
    gaia = Value(value="155.9", errorminus="0.9", errorplus="0.9")
    assert rules.improves("distance", Value(value="144.0"), gaia)
    assert not rules.improves("distance", Value(value="144.0"), Value(value="162.127"))


def test_magnitudes_need_more_than_photometric_scatter() -> None:
    old, newer = Value(value="4.74"), Value(value="4.72307", errorminus="0.023", errorplus="0.023")
    assert rules.decide("magV", old, newer, NASA_DATE, dt.date(2015, 9, 20)) is None
    brighter = Value(value="4.6", errorminus="0.02", errorplus="0.02")
    assert (
        rules.decide("magV", old, brighter, NASA_DATE, dt.date(2015, 9, 20)) is ChangeKind.UPDATED
    )


def test_a_slightly_smaller_error_is_not_news() -> None:
    old = Value(value="597.943", errorminus="12.2635", errorplus="12.2635")  # Kepler-1329
    slightly = Value(value="588.037", errorminus="11.708", errorplus="12.184")
    assert not rules.improves("distance", old, slightly)
    assert rules.improves("distance", old, Value(value="588.037", errorminus="5", errorplus="5"))


def test_a_circular_orbit_assumed_by_a_fit_is_not_added() -> None:
    date, before = NASA_DATE, dt.date(2016, 5, 10)
    assert rules.decide("eccentricity", None, Value(value="0"), date, before) is None
    measured = Value(value="0", errorminus="0.01", errorplus="0.02")
    assert rules.decide("eccentricity", None, measured, date, before) is ChangeKind.ADDED
    assert rules.decide("eccentricity", None, Value(value="0.1"), date, before) is ChangeKind.ADDED


def test_a_new_planet_without_an_oec_discovery_method_is_not_added() -> None:
    planet = nasa_11_com_b().planet
    del planet["discoverymethod"]
    record = nasa_11_com_b().model_copy(update={"name": "11 Com c", "planet": planet})
    host = Match(kind=MatchKind.HOST, file="systems/11 Com.xml", path="/system/star")
    result = rules.merge(record, host, ELEVEN_COM, "c0ffee")
    assert not result.changed
    assert "discovery method" in result.notes[0]
    new_system = rules.merge(record, Match(kind=MatchKind.NONE), None, "c0ffee")
    assert not new_system.changed


def test_angles_are_compared_modulo_360() -> None:
    date, before = NASA_DATE, dt.date(2016, 5, 10)
    # 55 Cancri c: 2.4 +43.1 -49.2 and 356 ±22 are the same angle within their errors.
    old = Value(value="2.4", errorminus="49.2", errorplus="43.1")
    assert rules.decide("periastron", old, Value("356", "22", "22"), date, before) is None
    # BD-08 2823 c: -233 and 127 are one angle written two ways.
    same = Value(value="-233", errorminus="21", errorplus="21")
    assert rules.decide("periastron", same, Value("127", "21", "21"), date, before) is None
    far = Value(value="10", errorminus="5", errorplus="5")
    assert rules.decide("periastron", far, Value("200", "5", "5"), date, before) is not None


def test_a_period_far_from_oecs_is_another_solution_and_withholds_the_row() -> None:
    # GJ 1151 c: 2.018 d in OEC, 389.7 d in both catalogues.
    record = nasa_11_com_b(
        period=Value(value="3947", errorminus="23", errorplus="23"),
        eccentricity=Value(value="0.1", errorminus="0.01", errorplus="0.01"),
    )
    result = rules.merge(record, MATCH, ELEVEN_COM, "c0ffee")
    assert result.patch is not None
    assert not [c for c in result.patch.changes if c.path == PLANET]
    (conflict,) = result.patch.conflicts
    assert (conflict.field, conflict.oec) == ("period", Value("326.03", "0.32", "0.32"))
    assert conflict.reason.startswith("would move")
    assert [c.path for c in result.patch.changes] == ["/system"]  # the star's distance only


def test_the_other_catalogue_agreeing_with_oec_withholds_an_update_that_is_no_refinement() -> None:
    # NASA's msini 15.464 ±0.124 against OEC's 19.4 ±1.5, which exoplanet.eu repeats with
    # a smaller error: not more precise than both, so OEC keeps it and it is a conflict.
    nasa = rules.merge(nasa_11_com_b(), MATCH, ELEVEN_COM, "c0ffee").patch
    agreeing = nasa_11_com_b(mass=Value("19.4", "0.1", "0.1", type="msini"))
    eu_record = agreeing.model_copy(update={"source": Source.EU, "row": 7})
    eu = rules.merge(eu_record, MATCH, ELEVEN_COM, "c0ffee").patch
    assert nasa is not None and eu is not None
    folded = rules.fold([nasa, eu], ELEVEN_COM)
    assert (PLANET, "mass") not in {(c.path, c.field) for c in folded.changes}
    (mass,) = [c for c in folded.conflicts if c.field == "mass"]
    assert mass.reason == "OEC's value agrees with exoplanet.eu"
    assert {(v.source, v.value.value) for v in mass.values} == {
        (Source.NASA, "15.464"),
        (Source.EU, "19.4"),
    }
    # Without exoplanet.eu's voice, NASA's more precise value goes ahead.
    alone = rules.fold([nasa], ELEVEN_COM)
    assert (PLANET, "mass") in {(c.path, c.field) for c in alone.changes}


def test_an_assumed_circular_orbit_is_no_voice_for_oec() -> None:
    # NN Ser c: OEC and exoplanet.eu both say a bare 0; NASA measured 0.08 ±0.05.
    text = ELEVEN_COM.replace(
        '<eccentricity errorminus="0.005" errorplus="0.005">0.231</eccentricity>',
        "<eccentricity>0</eccentricity>",
    )
    assert "<eccentricity>0</eccentricity>" in text
    measured = Value(value="0.08", errorminus="0.05", errorplus="0.05")
    nasa = rules.merge(nasa_11_com_b(eccentricity=measured), MATCH, text, "c0ffee").patch
    circular = nasa_11_com_b(eccentricity=Value(value="0"))
    eu = rules.merge(circular.model_copy(update={"source": Source.EU, "row": 7}), MATCH, text, "c")
    assert nasa is not None and eu.patch is not None
    folded = rules.fold([nasa, eu.patch], text)
    (change,) = [c for c in folded.changes if c.field == "eccentricity"]
    assert change.new == measured


def test_the_solar_system_gets_no_new_planets() -> None:
    # exoplanet.eu 2022-04 lists 1I/'Oumuamua as a confirmed planet of the Sun.
    eu = read_catalogue_file(FIXTURES / "catalogues/eu_2022_hashheader_crlf.csv")
    oumuamua = next(r for r in eu.records if r.name == "1I/'Oumuamua")
    sun = (FIXTURES / "oec/systems/Sun.xml").read_text(encoding="utf-8")
    host = Match(kind=MatchKind.HOST, file="systems/Sun.xml", path="/system/star")
    result = rules.merge(oumuamua, host, sun, "c0ffee")
    assert result.patch is None
    assert result.notes == ["the Solar System is a maintainer's call"]


def test_records_of_one_new_planet_merge_by_precedence_and_stay_as_they_were() -> None:
    nasa, eu = (read_catalogue_file(SAMPLE / f) for f in ("nasa.csv", "eu.csv"))
    (newer,) = [r for r in nasa.records if r.name == "BD+20 594 b"]
    (older,) = [r for r in eu.records if r.name == "BD+20 594 b"]
    before = (newer.model_copy(deep=True), older.model_copy(deep=True))

    merged = rules.merge_records([older, newer])

    assert (newer, older) == before  # the run's records are not changed by merging them
    assert merged.source is Source.NASA  # the newer row leads
    assert merged.planet["period"] == newer.planet["period"]
    assert merged.planet["inclination"] == older.planet["inclination"]  # only exoplanet.eu's
    assert merged.star["magJ"] == older.star["magJ"]
    assert "K2-56 b" in merged.aliases
