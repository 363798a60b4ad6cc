"""From a run's patches to one proposal per system file: final text, branch, PR text.

This is the publisher's domain logic, pure apart from reading system texts through the
callable it is given: fold all patches of a file, render it once, check it against OEC's
rules, and describe it.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import math
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

from lxml import etree
from pydantic import BaseModel

from common import prtext, rules
from common.changes import Conflict, FieldChange, NewPlanet, PatchRef, SystemPatch
from common.errors import InvalidSystemFileError, UnsafeNameError
from common.gitrepo import BranchCommit, branch_name
from common.matching import SAME_STAR_ARCSEC
from common.memo import Forgetful, Store, digest
from common.numbers import parse_number, same_period
from common.oec import edit, render, tree, validate
from common.oec.names import normalise, split_planet_name
from common.progress import QUIET, Progress
from common.records import PlanetRecord, Source, Value

# The maintainer's line on every planet he imports, with what our columns give: NASA's
# discoverer and telescope ("This planet was discovered by ... with ...") are not among them.
DESCRIPTION = "The parameters listed here were imported into the Open Exoplanet Catalogue from {}."
SOURCE_WORDS = {Source.NASA: "the NASA Exoplanet Archive", Source.EU: "the exoplanet.eu website"}


class Proposal(BaseModel):
    file: str
    system: str
    branch: str
    new: bool
    base_commit: str
    text: str
    changes: list[FieldChange]
    new_planets: list[PlanetRecord]
    # The conflicts left to the maintainer are in the body; their records are the build's
    # (FileBuilt.conflicts), not carried here a second time.
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
    # Edited files a capped build left unbuilt: the cap was full before them (``build``).
    deferred: list[str] = []


def describe(
    file: str,
    text: str,
    base: str,
    changes: list[FieldChange],
    planets: list[PlanetRecord],
    new: bool,
    conflicts: Sequence[Conflict] = (),
    root: etree._Element | None = None,
) -> Proposal:
    """The proposal of a file's final ``text`` (``root``: its tree, if at hand): branch, PR
    title and body, commit message."""
    system = tree.names_of(tree.parse_system(text) if root is None else root)[0]
    return Proposal(
        file=file,
        system=system,
        branch=branch_name(file),
        new=new,
        base_commit=base,
        text=text,
        changes=changes,
        new_planets=planets,
        title=prtext.title(system, changes, planets, new),
        body=prtext.body(file, system, changes, planets, new, list(conflicts)),
        commit_message=prtext.commit_message(file, system, changes, planets, new),
    )


def existing_file_proposal(
    file: str,
    patches: list[SystemPatch],
    folded: SystemPatch,
    text: str,
    root: etree._Element | None = None,
) -> Proposal | Refusal | None:
    """The proposal for one existing file: its ``patches`` folded into ``folded``
    (:func:`common.rules.fold`); a refusal, or None when nothing changes. ``root`` is
    ``text`` already parsed (only read here), to save a parse."""
    if folded.is_empty:
        return None
    originals = [new.record for patch in patches for new in patch.new_planets]
    if root is None:
        root = tree.parse_system(text)
    folded_planets = [
        NewPlanet(parent_path=new.parent_path, record=_named_in(new.record, root, new.parent_path))
        for new in _one_each(folded.new_planets, originals)
    ]
    new_planets = [
        NewPlanet(parent_path=new.parent_path, record=described(new.record, originals))
        for new in folded_planets
    ]
    # The edit works on a copy (cheaper than a parse): the original tree stays the old
    # text's, which validation compares against.
    new_root = copy.deepcopy(root)
    try:
        new_text = edit.apply_patch(text, folded.changes, new_planets, file=file, root=new_root)
    except (KeyError, ValueError, InvalidSystemFileError) as exc:
        return Refusal(file=file, reason=f"patch does not fit the file: {exc}")
    if new_text == text:
        return None
    if problems := validate.new_problems(text, new_text, file, old_root=root, new_root=new_root):
        return Refusal(file=file, reason="; ".join(problems))
    planets = [p.record for p in folded_planets]
    return describe(
        file,
        new_text,
        folded.base_commit,
        folded.changes,
        planets,
        False,
        folded.conflicts,
        root=new_root,
    )


def _named_in(planet: PlanetRecord, root: etree._Element, host_path: str) -> PlanetRecord:
    """A new planet named as OEC names the planets of its host: like the host's first planet
    (its name without the letter), or else like the host. NASA's ``KOI-1831 d`` around
    ``Kepler-324`` (alias ``KOI-1831``; planets ``Kepler-324 b, c``) is ``Kepler-324 d``,
    ``KOI-1831 d`` an alias, as the maintainer wrote it. Only when the row's name is one of
    the host's names or of its planets' with a letter."""
    split = split_planet_name(planet.name)
    try:
        host = tree.find(root, host_path)
    except KeyError:
        return planet  # apply_patch reports the stale path
    names = tree.names_of(host)
    prefixes = [s[0] for p in host.findall("planet") if (s := _split_primary(p))]
    prefix = prefixes[0] if prefixes else names[0] if names else None
    if split is None or prefix is None or _spelling(split[0]) == _spelling(prefix):
        return planet
    if _spelling(split[0]) not in {_spelling(n) for n in [*names, *prefixes]}:
        return planet
    all_names = _distinct([f"{prefix} {split[1]}", *planet.all_names])
    return planet.model_copy(update={"name": all_names[0], "aliases": all_names[1:]})


def _split_primary(planet: etree._Element) -> tuple[str, str] | None:
    names = tree.names_of(planet)
    return split_planet_name(names[0]) if names else None


def _one_each(new_planets: list[NewPlanet], originals: list[PlanetRecord]) -> list[NewPlanet]:
    """The folded new planets, those that are one planet under two spellings merged
    (:func:`_one_planet`: exoplanet.eu's ``HD 113337 Ac`` is NASA's ``HD 113337 c``)."""
    kept: list[NewPlanet] = []
    for new in new_planets:
        rows = _rows_of(new.record, originals)
        twin = next(
            (
                i
                for i, other in enumerate(kept)
                if other.parent_path == new.parent_path
                and _one_planet(_rows_of(other.record, originals), rows)
            ),
            None,
        )
        if twin is None:
            kept.append(new)
        else:
            merged = rules.merge_records([kept[twin].record, new.record])
            kept[twin] = NewPlanet(parent_path=new.parent_path, record=merged)
    return kept


def _rows_of(planet: PlanetRecord, rows: Iterable[PlanetRecord]) -> list[PlanetRecord]:
    """The catalogue rows that are ``planet``: those that share a name with it."""
    keys = {normalise(n) for n in planet.all_names}
    return [r for r in rows if keys & {normalise(n) for n in r.all_names}]


def described(planet: PlanetRecord, rows: Iterable[PlanetRecord]) -> PlanetRecord:
    """``planet`` with the maintainer's description line, naming the catalogues of the
    ``rows`` that are this planet (share a name with it)."""
    sources = {r.source for r in _rows_of(planet, rows)}
    words = " and ".join(SOURCE_WORDS[s] for s in Source if s in sources | {planet.source})
    text = Value(value=DESCRIPTION.format(words))
    return planet.model_copy(update={"planet": {"description": text, **planet.planet}})


def own_host(record: PlanetRecord) -> str:
    """The host a row names: its host, else its planet name without the letter, else its own
    name (an object without a host star is its own system and star, as the maintainer files
    OGLE-2016-BLG-1928)."""
    if record.host:
        return record.host
    split = split_planet_name(record.name)
    return split[0] if split else record.name


def _host_keys(record: PlanetRecord) -> set[str]:
    return {normalise(n) for n in record.host_names or [own_host(record)]}


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
    """Records of new systems grouped by host: shared host name, within 10″, or a shared
    planet name (one planet has one host, whatever a catalogue's typo says: exoplanet.eu
    2022-04 puts OGLE-2019-BLG-0299 b at KMT-2017-BLG-2509, NASA at its own event)."""
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_key: dict[tuple[str, str], int] = {}
    for i, record in enumerate(records):
        keys = {("host", k) for k in _host_keys(record)}
        keys |= {("planet", normalise(n)) for n in record.all_names}
        for key in keys:
            if key in by_key:
                parent[root(i)] = root(by_key[key])
            else:
                by_key[key] = i
    placed = [(i, r) for i, r in enumerate(records) if r.ra is not None and r.dec is not None]
    placed.sort(key=lambda item: item[1].dec or 0.0)
    window = SAME_STAR_ARCSEC / 3600
    for n, (i, a) in enumerate(placed):
        for j, b in placed[n + 1 :]:
            if (b.dec or 0.0) - (a.dec or 0.0) > window:
                break
            if _separation_arcsec(a, b) <= SAME_STAR_ARCSEC:
                parent[root(j)] = root(i)
    groups: dict[int, list[PlanetRecord]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[root(i)].append(record)
    return list(groups.values())


def _spelling(name: str) -> str:
    return "".join(c for c in name.casefold() if c.isalnum())


def _first_listed(record: PlanetRecord) -> tuple[dt.date, int, int]:
    return (record.updated or dt.date.max, 0 if record.source is Source.NASA else 1, record.row)


def system_name(records: list[PlanetRecord]) -> str | None:
    """The name of a new system: its host as named by the row that listed it first.

    That is the earliest source date (exoplanet.eu's ``updated``, NASA's ``rowupdate`` or
    catalogue date; NASA first on a tie): a maintainer imports a planet from the catalogue he
    sees it in first and does not rename the file when the other one catches up
    (``HIP 3206``, ``TOI-1098``, ``KMT-2019-BLG-1715`` from exoplanet.eu although NASA says
    ``HD 3765``, ``HD 110082``, ``KMT-2019-BLG-1715L``). Where NASA writes the same
    designation, only spaced or punctuated otherwise, NASA's spelling is kept (exoplanet.eu
    writes ``GJ 720A``, ``KMT-2018:BLG-1996L``). None when no row's name can be a file name.
    """
    nasa = {_spelling(h): h for r in records if r.source is Source.NASA for h in r.host_names}
    for record in sorted(records, key=_first_listed):
        name = own_host(record)
        name = nasa.get(_spelling(name), name)
        try:
            render.system_file_name(name)
        except UnsafeNameError:
            continue
        return name
    return None


def _planets_of_host(records: list[PlanetRecord]) -> list[PlanetRecord]:
    """One record per planet: the same planet from both catalogues merged by precedence.

    Rows that share a name are one planet. So are, around one new host, the rows of two
    catalogues that share no name but carry the same letter (exoplanet.eu's ``TOI-1248 Ab``
    is NASA's ``TOI-1248 b``) or the same period (NASA's ``TOI-128.01`` is ``TOI-128 Ab``;
    ``Kepler-1794 c`` of one is ``Kepler-1794 b`` of the other): a file must not hold one
    planet twice.
    """
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
    planets: list[list[PlanetRecord]] = []
    for _, group in groups:
        twin = next((p for p in planets if _one_planet(p, group)), None)
        if twin is None:
            planets.append(group)
        else:
            twin += group
    return sorted((rules.merge_records(g) for g in planets), key=lambda r: r.name)


def _one_planet(a: list[PlanetRecord], b: list[PlanetRecord]) -> bool:
    """Whether the rows of two catalogues (no catalogue in both) are one planet of one host."""
    if {r.source for r in a} & {r.source for r in b}:
        return False
    letters = {r.letter for r in a if r.letter}
    if any(r.letter in letters for r in b if r.letter):
        return True
    return any(same_period(_period(x), _period(y)) for x in a for y in b)


def _period(record: PlanetRecord) -> float | None:
    value = record.planet.get("period")
    return parse_number(value.value) if value is not None else None


def _new_host(records: list[PlanetRecord]) -> list[PlanetRecord] | Refusal:
    """The planets of one new host, merged across catalogues, each naming the host
    :func:`system_name` chose."""
    planets = _planets_of_host(records)
    name = system_name(records)
    if name is None:
        return Refusal(file="", reason=f"no host name usable as a file name for {planets[0].name}")
    return [_named(planet, name) for planet in planets]


def _named(planet: PlanetRecord, system: str) -> PlanetRecord:
    """``planet`` around the host ``system``, named as its system is: ``HIP 3206 b`` first,
    ``HD 3765 b`` an alias. Names that differ only in spacing or punctuation are one name
    (``GJ 720A`` next to ``GJ 720 A`` adds nothing: the index reads them as one)."""
    hosts = _distinct([system, *planet.host_names])
    own = [
        n
        for n in planet.all_names
        if (split := split_planet_name(n)) and _spelling(split[0]) == _spelling(system)
    ]
    names = _distinct([*own[:1], *planet.all_names])
    return planet.model_copy(
        update={"host": system, "host_aliases": hosts[1:], "name": names[0], "aliases": names[1:]}
    )


def _distinct(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = _spelling(name)
        if key and key not in seen:
            seen.add(key)
            out.append(name)
    return out


class HostBuilt(BaseModel):
    """What one new host's records come to before the run's file names are compared: a
    proposal, or a refusal (with the file it would have taken, "" if none)."""

    proposal: Proposal | None = None
    refusal: Refusal | None = None


def _hosts_built(
    groups: list[list[PlanetRecord]], base: str, known: Store | None = None
) -> list[HostBuilt]:
    """A :class:`HostBuilt` per group of :func:`group_new_hosts`, rendered together (one
    astropy call for every position ``known`` does not hold)."""
    results: list[HostBuilt] = []
    hosts: list[tuple[int, list[PlanetRecord]]] = []
    written: list[list[PlanetRecord]] = []  # the same planets with their description line
    for group in groups:
        host = _new_host(group)
        if isinstance(host, Refusal):
            results.append(HostBuilt(refusal=host))
        else:
            results.append(HostBuilt())
            hosts.append((len(results) - 1, host))
            written.append([described(planet, group) for planet in host])
    for (at, planets), rendered in zip(
        hosts, render.render_new_systems(written, known), strict=True
    ):
        if isinstance(rendered, Exception):
            reason = f"{planets[0].host}: {rendered}"
            results[at] = HostBuilt(refusal=Refusal(file="", reason=reason))
            continue
        file_name, text = rendered
        file = f"systems/{file_name}"
        try:
            root: etree._Element | None = tree.parse_system(text)
        except etree.XMLSyntaxError:
            root = None  # validation says so
        if problems := validate.problems(text, file, root=root):
            results[at] = HostBuilt(refusal=Refusal(file=file, reason="; ".join(problems)))
        else:
            results[at] = HostBuilt(
                proposal=describe(file, text, base, [], planets, True, root=root)
            )
    return results


def new_system_proposals(
    records: list[PlanetRecord],
    base: str,
    existing: Collection[str],
    memo: Store | None = None,
) -> tuple[list[Proposal], list[Refusal]]:
    """One new file per new host (grouped by :func:`group_new_hosts`), or a refusal.

    ``memo`` answers for a host whose records are those of an earlier run: a run in which
    one new planet's row changed renders that host again, not all 700.
    """
    memo = memo or Forgetful()
    groups = group_new_hosts(records)
    units = [f"new/{min(r.name for r in group)}" for group in groups]  # a name is in one group
    keys = [digest(*sorted(r.model_dump_json() for r in group)) for group in groups]
    results: list[HostBuilt | None] = []
    for unit, key in zip(units, keys, strict=True):
        stored = memo.get("build", unit, key)
        results.append(None if stored is None else HostBuilt.model_validate_json(stored))
    missing = [i for i, result in enumerate(results) if result is None]
    computed_hosts = _hosts_built([groups[i] for i in missing], base, memo)
    for i, computed in zip(missing, computed_hosts, strict=True):
        results[i] = computed
        memo.put("build", units[i], keys[i], computed.model_dump_json().encode())
    proposals: list[Proposal] = []
    unnamed: list[Refusal] = []  # refusals that name no file come first, as they always have
    refusals: list[Refusal] = []
    taken = set(existing)
    for result in results:
        assert result is not None
        built = result.proposal or result.refusal
        assert built is not None
        if built.file in taken:
            refusals.append(Refusal(file=built.file, reason="a system file of that name exists"))
        elif result.proposal is not None:
            taken.add(result.proposal.file)
            proposals.append(_rebased(result.proposal, base))
        elif result.refusal is not None:
            (unnamed if result.refusal.file == "" else refusals).append(result.refusal)
    return proposals, unnamed + refusals


class FileBuilt(BaseModel):
    """What one existing file's patches come to: a proposal, a refusal or neither, and the
    conflicts left to a maintainer."""

    proposal: Proposal | None = None
    refusal: Refusal | None = None
    conflicts: list[Conflict] = []


BuildJob = tuple[str, list[SystemPatch | PatchRef], str | None]  # file, its patches, its text


class BuiltElsewhere(Protocol):
    """Builds files in other processes while :func:`build` goes on
    (services/publisher/ahead.py)."""

    def start(self, jobs: list[BuildJob]) -> None:
        """Begin building these files, in this order."""
        ...

    def value(self, file: str) -> bytes | None:
        """The JSON of ``file``'s :class:`FileBuilt` (waiting for it); None if it was not
        built elsewhere."""
        ...


def build_job(job: BuildJob) -> FileBuilt:
    """One file's build, its remembered patches loaded first."""
    file, patches, text = job
    loaded = [p.load() if isinstance(p, PatchRef) else p for p in patches]
    return build_file(file, loaded, text)


def built_json(job: BuildJob) -> bytes:
    """What :func:`build` keeps of one file's build: the JSON of its :class:`FileBuilt`."""
    return build_job(job).model_dump_json().encode()


def build_file(file: str, file_patches: list[SystemPatch], text: str | None) -> FileBuilt:
    """Fold every patch of ``file`` into its ``text`` (None: the file is missing)."""
    changed = any(not p.is_empty for p in file_patches)
    root = tree.parse_system(text) if changed and text is not None else None
    folded = rules.fold(file_patches, text if changed else None, root=root)
    built = FileBuilt(conflicts=[c.model_copy(update={"file": file}) for c in folded.conflicts])
    if not changed:
        return built
    if text is None:
        built.refusal = Refusal(file=file, reason="file not found at the index commit")
        return built
    result = existing_file_proposal(file, file_patches, folded, text, root)
    if isinstance(result, Proposal):
        built.proposal = result
    elif isinstance(result, Refusal):
        built.refusal = result
    return built


def _patch_digest(patch: SystemPatch | PatchRef) -> str:
    if isinstance(patch, PatchRef) or patch.inputs:
        return patch.inputs
    return hashlib.sha256(
        patch.model_copy(update={"base_commit": ""}).model_dump_json().encode()
    ).hexdigest()


def _rebased(proposal: Proposal, base: str) -> Proposal:
    return proposal.model_copy(update={"base_commit": base})


def build(
    patches: Sequence[SystemPatch | PatchRef],
    blobs: Mapping[str, str],
    read: Callable[[list[str]], Mapping[str, str | None]],
    base: str,
    progress: Progress = QUIET,
    memo: Store | None = None,
    slots: int = 0,
    takes_slot: Callable[[Proposal], bool] = lambda proposal: True,
    elsewhere: BuiltElsewhere | None = None,
) -> Built:
    """Every proposal of a run, sorted by file, every file refused with the reason, and every
    conflict, largest first.

    ``blobs`` holds every file path at ``base`` with the git id of its text (so that no new
    system takes an existing file's name); ``read`` gives the texts at ``base`` of the files
    it is asked for, in one call. Patches without changes carry what their rows said of
    OEC's values and their conflicts; a :class:`~common.changes.PatchRef` is loaded only if
    its file is built. ``memo`` answers for a file whose text (by its git id) and patches
    are those of an earlier run: only the other files' texts are read.

    With ``slots`` (0: no limit), proposals are built in file order until ``slots`` of them
    take a slot (``takes_slot``: a capped sink's rule); each edited file after that is only
    listed in ``deferred``, with no proposal, refusal or conflict this run. That is all a
    sink that caps in file order needs to choose. New systems are always built: the file
    each one takes is known only then. An uncapped build hands the files the memo cannot
    answer for to ``elsewhere`` first (other processes), and takes what it sends back.
    """
    memo = memo or Forgetful()
    by_file: dict[str, list[SystemPatch | PatchRef]] = defaultdict(list)
    new_records: list[PlanetRecord] = []
    for patch in patches:
        if isinstance(patch, SystemPatch) and patch.new_system:
            new_records += patch.new_system
        elif patch.file:
            by_file[patch.file].append(patch)
    built = Built()
    progress.stage("build", len(by_file) + bool(new_records))
    keys = {
        file: digest(file, blobs.get(file, ""), *sorted(_patch_digest(p) for p in file_patches))
        for file, file_patches in by_file.items()
    }
    # Read in one call, before the loop: the texts of the files the memo cannot answer for.
    texts = read([file for file in sorted(by_file) if not memo.holds("build", file, keys[file])])
    if elsewhere is not None and not slots:  # they build while the new systems are built here
        elsewhere.start([(file, by_file[file], texts.get(file)) for file in sorted(texts)])
    new_proposals: list[Proposal] = []
    new_refusals: list[Refusal] = []
    if new_records:
        new_proposals, new_refusals = new_system_proposals(new_records, base, blobs, memo)
        progress.advance()
    waiting = deque(sorted(new_proposals, key=lambda p: p.file))
    taken = 0

    def add(proposal: Proposal) -> None:
        nonlocal taken
        built.proposals.append(proposal)
        if slots and taken < slots and takes_slot(proposal):
            taken += 1

    for file in sorted(by_file):
        while waiting and waiting[0].file < file:
            add(waiting.popleft())
        file_patches = by_file[file]
        if slots and taken >= slots and any(not p.is_empty for p in file_patches):
            built.deferred.append(file)
            continue
        if (stored := memo.get("build", file, keys[file])) is not None:
            result = FileBuilt.model_validate_json(stored)
        elif elsewhere is not None and (sent := elsewhere.value(file)) is not None:
            result = FileBuilt.model_validate_json(sent)
            memo.put("build", file, keys[file], sent)
        else:
            result = build_job((file, file_patches, texts.get(file)))
            memo.put("build", file, keys[file], result.model_dump_json().encode())
        built.conflicts += result.conflicts
        if result.proposal is not None:
            add(_rebased(result.proposal, base))
        if result.refusal is not None:
            built.refusals.append(result.refusal)
        progress.advance()
    for proposal in waiting:
        add(proposal)
    built.refusals += new_refusals
    built.proposals.sort(key=lambda p: p.file)
    built.conflicts.sort(key=lambda c: (-c.size, c.file, c.path, c.field))
    return built
