"""From a run's patches to one proposal per system file: final text, branch, PR text.

This is the publisher's domain logic, pure apart from reading system texts through the
callable it is given: fold all patches of a file, render it once, check it against OEC's
rules, and describe it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

from pydantic import BaseModel

from common import prtext, rules
from common.changes import Conflict, FieldChange, SystemPatch
from common.errors import InvalidSystemFileError
from common.gitrepo import BranchCommit, branch_name
from common.oec import edit, render, tree, validate
from common.oec.names import normalise, split_planet_name
from common.progress import QUIET, Progress
from common.records import PlanetRecord

# Two new hosts closer than this are one star seen by two catalogues under different names.
SAME_HOST_ARCSEC = 10.0


class Proposal(BaseModel):
    file: str
    system: str
    branch: str
    new: bool
    base_commit: str
    text: str
    changes: list[FieldChange]
    new_planets: list[PlanetRecord]
    conflicts: list[Conflict] = []
    title: str
    body: str
    commit_message: str

    def branch_commit(self, base: str | None = None) -> BranchCommit:
        """The one-file commit of this proposal, on ``base`` (default: its own base)."""
        return BranchCommit(
            branch=self.branch,
            base=base or self.base_commit,
            file=self.file,
            text=self.text,
            message=self.commit_message,
        )


class Refusal(BaseModel):
    file: str
    reason: str


class Built(BaseModel):
    """Every proposal of a run, the files refused, and the conflicts left to a maintainer."""

    proposals: list[Proposal] = []
    refusals: list[Refusal] = []
    conflicts: list[Conflict] = []


def describe(
    file: str,
    text: str,
    base: str,
    changes: list[FieldChange],
    planets: list[PlanetRecord],
    new: bool,
    conflicts: Sequence[Conflict] = (),
) -> Proposal:
    """The proposal of a file's final ``text``: branch, PR title and body, commit message."""
    system = tree.names_of(tree.parse_system(text))[0]
    return Proposal(
        file=file,
        system=system,
        branch=branch_name(file),
        new=new,
        base_commit=base,
        text=text,
        changes=changes,
        new_planets=planets,
        conflicts=list(conflicts),
        title=prtext.title(system, changes, planets, new),
        body=prtext.body(file, system, changes, planets, new, list(conflicts)),
        commit_message=prtext.commit_message(file, system, changes, planets, new),
    )


def existing_file_proposal(file: str, folded: SystemPatch, text: str) -> Proposal | Refusal | None:
    """The proposal for one existing file's folded patch, a refusal, or None when nothing
    changes."""
    if folded.is_empty:
        return None
    try:
        new_text = edit.apply_patch(text, folded.changes, folded.new_planets, file=file)
    except (KeyError, ValueError, InvalidSystemFileError) as exc:
        return Refusal(file=file, reason=f"patch does not fit the file: {exc}")
    if new_text == text:
        return None
    if problems := validate.new_problems(text, new_text, file):
        return Refusal(file=file, reason="; ".join(problems))
    planets = [p.record for p in folded.new_planets]
    return describe(
        file, new_text, folded.base_commit, folded.changes, planets, False, folded.conflicts
    )


def _host_keys(record: PlanetRecord) -> set[str]:
    names = record.host_names
    if not names and (split := split_planet_name(record.name)):
        names = [split[0]]
    return {normalise(n) for n in names}


def _separation_arcsec(a: PlanetRecord, b: PlanetRecord) -> float:
    """Great-circle distance (haversine) between two records' hosts, arcsec."""
    assert a.ra is not None and a.dec is not None and b.ra is not None and b.dec is not None
    ra1, dec1, ra2, dec2 = map(math.radians, (a.ra, a.dec, b.ra, b.dec))
    h = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h)))) * 3600


def group_new_hosts(records: list[PlanetRecord]) -> list[list[PlanetRecord]]:
    """Records of new systems grouped by host: shared host name or within 10″."""
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_key: dict[str, int] = {}
    for i, record in enumerate(records):
        for key in _host_keys(record):
            if key in by_key:
                parent[root(i)] = root(by_key[key])
            else:
                by_key[key] = i
    placed = [(i, r) for i, r in enumerate(records) if r.ra is not None and r.dec is not None]
    placed.sort(key=lambda item: item[1].dec or 0.0)
    window = SAME_HOST_ARCSEC / 3600
    for n, (i, a) in enumerate(placed):
        for j, b in placed[n + 1 :]:
            if (b.dec or 0.0) - (a.dec or 0.0) > window:
                break
            if _separation_arcsec(a, b) <= SAME_HOST_ARCSEC:
                parent[root(j)] = root(i)
    groups: dict[int, list[PlanetRecord]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[root(i)].append(record)
    return list(groups.values())


def _planets_of_host(records: list[PlanetRecord]) -> list[PlanetRecord]:
    """One record per planet: the same planet from both catalogues merged by precedence."""
    groups: list[tuple[set[str], list[PlanetRecord]]] = []
    for record in records:
        keys = rules.planet_keys(record)
        for group_keys, group in groups:
            if group_keys & keys:
                group.append(record)
                group_keys |= keys
                break
        else:
            groups.append((keys, [record]))
    return sorted((rules.merge_records(g) for _, g in groups), key=lambda r: r.name)


def _new_host(records: list[PlanetRecord]) -> list[PlanetRecord] | Refusal:
    """The planets of one new host, merged across catalogues, each naming the host."""
    planets = _planets_of_host(records)
    if planets[0].host:
        return planets
    split = split_planet_name(planets[0].name)
    if split is None:
        return Refusal(file="", reason=f"no host name for new planet {planets[0].name}")
    return [p.model_copy(update={"host": split[0]}) for p in planets]


def new_system_proposals(
    records: list[PlanetRecord], base: str, existing: Collection[str]
) -> tuple[list[Proposal], list[Refusal]]:
    """One new file per new host (grouped by :func:`group_new_hosts`), or a refusal."""
    proposals: list[Proposal] = []
    refusals: list[Refusal] = []
    hosts: list[list[PlanetRecord]] = []
    for group in group_new_hosts(records):
        host = _new_host(group)
        if isinstance(host, Refusal):
            refusals.append(host)
        else:
            hosts.append(host)
    taken = set(existing)
    for planets, rendered in zip(hosts, render.render_new_systems(hosts), strict=True):
        if isinstance(rendered, Exception):
            refusals.append(Refusal(file="", reason=f"{planets[0].host}: {rendered}"))
            continue
        file_name, text = rendered
        file = f"systems/{file_name}"
        if file in taken:
            refusals.append(Refusal(file=file, reason="a system file of that name exists"))
            continue
        if problems := validate.problems(text, file):
            refusals.append(Refusal(file=file, reason="; ".join(problems)))
            continue
        taken.add(file)
        proposals.append(describe(file, text, base, [], planets, True))
    return proposals, refusals


def build(
    patches: list[SystemPatch],
    texts: Mapping[str, str | None],
    existing: Collection[str],
    base: str,
    progress: Progress = QUIET,
) -> Built:
    """Every proposal of a run, sorted by file, every file refused with the reason, and every
    conflict, largest first.

    ``texts`` holds the text at ``base`` of every file the patches change; ``existing`` is
    every file path at ``base``, so that no new system can take an existing file's name.
    Patches without changes carry what their rows said of OEC's values and their conflicts.
    """
    by_file: dict[str, list[SystemPatch]] = defaultdict(list)
    new_records: list[PlanetRecord] = []
    for patch in patches:
        if patch.new_system:
            new_records += patch.new_system
        elif patch.file:
            by_file[patch.file].append(patch)
    built = Built()
    progress.stage("build", len(by_file) + bool(new_records))
    for file in sorted(by_file):
        file_patches = by_file[file]
        changed = any(not p.is_empty for p in file_patches)
        text = texts.get(file) if changed else None
        folded = rules.fold(file_patches, text)
        built.conflicts += [c.model_copy(update={"file": file}) for c in folded.conflicts]
        if not changed:
            continue
        result = (
            Refusal(file=file, reason="file not found at the index commit")
            if text is None
            else existing_file_proposal(file, folded, text)
        )
        if isinstance(result, Proposal):
            built.proposals.append(result)
        elif isinstance(result, Refusal):
            built.refusals.append(result)
        progress.advance()
    new, refused = new_system_proposals(new_records, base, existing)
    progress.advance(bool(new_records))
    built.proposals += new
    built.refusals += refused
    built.proposals.sort(key=lambda p: p.file)
    built.conflicts.sort(key=lambda c: (-c.size, c.file, c.path, c.field))
    return built
