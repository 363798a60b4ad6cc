"""What a maintainer reads, made from real rows of the bundled sample: titles that end at a
field, counts in good English, sources in flat brackets, and a new system's own values."""

from __future__ import annotations

from common import prtext, rules
from common.changes import FieldChange
from common.oec import tree
from common.oec.render import render_new_system
from common.proposals import Proposal, existing_file_proposal
from tests.paths import SAMPLE
from tests.qualityutil import catalogue, patch, record


def eleven_com() -> tuple[str, list[FieldChange]]:
    """The real proposal for 11 Com from the sample's NASA row."""
    return proposal_for("11 Com b")


def proposal_for(planet: str) -> tuple[str, list[FieldChange]]:
    """The real proposal from the sample's NASA row of ``planet`` alone."""
    found = patch(record("nasa.csv", planet))
    text = (SAMPLE / "oec" / found.file).read_text(encoding="utf-8")
    proposal = existing_file_proposal(found.file, [found], rules.fold([found], text), text)
    assert isinstance(proposal, Proposal)
    return proposal.system, proposal.changes


def depth(text: str) -> int:
    """How deeply brackets nest in ``text``."""
    deepest = level = 0
    for ch in text:
        level += ch == "("
        level -= ch == ")"
        deepest = max(deepest, level)
    return deepest


def test_a_long_title_ends_at_a_field_and_counts_what_it_leaves_out() -> None:
    system, changes = proposal_for("HD 126525 b")  # eight fields change
    fields = {c.field for c in changes if c.field != "lastupdate"}

    title = prtext.title(system, changes, [], False)

    assert len(title) <= prtext.TITLE_MAX
    listed, _, more = title.removeprefix(f"{system}: update ").partition(" +")
    shown = listed.split(", ")
    assert set(shown) <= fields  # every field named whole, none cut
    assert more == f"{len(fields) - len(shown)} more"
    assert prtext.commit_message("f", system, changes, [], False).splitlines()[0] == title


def test_a_title_that_fits_is_left_whole() -> None:
    system, changes = eleven_com()
    some = [c for c in changes if c.field in {"mass", "period"}]

    assert prtext.title(system, some, [], False) == f"{system}: update mass, period"


def test_one_new_planet_is_counted_in_the_singular() -> None:
    nasa = catalogue("nasa.csv")
    planet = next(r for r in nasa.records if r.host == "TOI-1173")
    one_change = [c for c in eleven_com()[1] if c.field == "mass"]

    body = prtext.body("systems/TOI-1173.xml", "TOI-1173", one_change, [planet], False)

    assert "1 value updated, 0 added, 1 new planet." in body
    two = prtext.body("f", "s", [], [planet, planet], False)
    assert "0 values updated, 0 added, 2 new planets." in two


def test_where_a_value_comes_from_is_said_without_nested_brackets() -> None:
    _, changes = eleven_com()
    dated = [c for c in changes if c.source_dated_by]
    assert dated  # NASA's composite table: dated by the catalogue's own date

    for change in dated:
        line = prtext.change_line(change)
        assert depth(line.replace("(m sin i)", "")) == 1, line
        assert f"row {change.source_row}" in line
        assert f"{change.source_dated_by} {change.source_date}" in line
    planet = record("nasa.csv", "11 Com b")
    assert depth(prtext.planet_line(planet)) == 1


def test_a_new_system_lists_its_star_and_system_values_with_their_source() -> None:
    planets = [r for r in catalogue("nasa.csv").records if r.host == "TOI-1173"]
    file_name, text = render_new_system(planets)
    root = tree.parse_system(text)
    written = {
        (part, child.tag)
        for part, element in (("system", root), ("star", root.find("star")))
        for child in element
        if child.tag not in {"name", "star", "planet", "constellation"}
    }

    body = prtext.body(f"systems/{file_name}", "TOI-1173", [], planets, True)
    message = prtext.commit_message(f"systems/{file_name}", "TOI-1173", [], planets, True)

    section = body.split("### Star and system", 1)[1].split("**Counts:**", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| TOI-1173 (")]
    cells = [row.split(" | ") for row in rows]
    listed = {(obj.removeprefix("| TOI-1173 (").rstrip(")"), field) for obj, field, *_ in cells}
    assert listed == written
    assert all(f"row {planets[0].row}" in row for row in rows)
    assert "star TOI-1173: mass, radius, temperature" in message
    assert f"NASA Exoplanet Archive row {planets[0].row}" in message


def test_the_body_keeps_its_sections_in_order() -> None:
    system, changes = eleven_com()
    planet = next(r for r in catalogue("nasa.csv").records if r.host == "TOI-1173")

    body = prtext.body("systems/11 Com.xml", system, changes, [planet], False)

    headings = [line for line in body.splitlines() if line.startswith(("###", "**"))]
    assert [h.split(":**")[0] for h in headings] == [
        "### New planets",
        "### Changed values",
        "**Counts",
        "**Rules",
        "**Feedback",
    ]
    assert body.endswith("\n")
