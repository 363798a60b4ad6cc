"""Matching a catalogue row to OEC: the algorithm, over the names and positions the alias
index (common/oec/index.py) holds, and what it says about the row.

Matching (:func:`match`) refuses instead of guessing: when the row's names point at
two distinct objects the answer is AMBIGUOUS with the candidates listed. In order: the row's
planet names; composed names (row names against composed keys, and host names + letter);
host names, a name shared by an object and its ancestors counting once for the innermost;
the position. A planet found by name must agree with every host the row's host names find.
A host found by name or position must not already hold a planet with the row's letter,
unless that planet also has the row's period (within ``numbers.SAME_PERIOD``): then it is
the row's planet under another name (NASA's ``K2-329 b`` is OEC's ``EPIC 246193072 b``).

Tiers. ``systems_kepler/`` is consulted only when ``systems/`` says nothing at all for a row
(no planet, no host, no position). It is the frozen Kepler candidate list: 4,387 of the
planet keys it shares with ``systems/`` are copies of planets ``systems/`` holds as
confirmed, and its letters are per file (``KOI-0179 b`` there is ``KOI-179.01``; ``KOI-179 b``
in ``systems/`` is ``KOI-179.02``), so looking at both folders at once would make every Kepler
planet with a KOI alias ambiguous. ``tiers=(("systems", "systems_kepler"),)`` gives the
strict view. Whatever that second tier finds, the row is a planet OEC knows at most as a
candidate: the answer is NONE (``via="kepler candidate"``), a new ``systems/`` file, as the
maintainer wrote ``systems/Kepler-1704.xml`` next to ``systems_kepler/KOI-0375.xml``, which
stays as it is. Unless the KOI star is itself in ``systems/`` (one of its names, or within
the radius): a stale copy of a system the row did not find, so AMBIGUOUS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel

from common.numbers import same_period
from common.oec.names import normalise, split_planet_name
from common.records import PlanetRecord

if TYPE_CHECKING:  # the index imports this module; only the type goes the other way
    from common.oec.index import AliasIndex

# "The same star": a catalogue row within this of an OEC system's position matches it, and
# two new hosts this close are one star that two catalogues name differently.
# 10″, measured on the snapshot: of the catalogue rows whose planet OEC already holds by name,
# 89–90 % lie within 5″ of OEC's system position and 95–96 % within 10″ (NASA and
# exoplanet.eu alike; the rest are high proper motion stars, 16 years of it between J2000 and
# Gaia epochs, or plain wrong positions). systems_kepler rounds RA to whole seconds (up to
# 7.5″ · cos δ). Wider is not needed and would be riskier, though no two distinct systems of
# systems/ lie within 30″ of each other (only the six duplicated microlensing events do).
SAME_STAR_ARCSEC = 10.0

KEPLER_CANDIDATES = "systems_kepler"
# Folders tried in turn; the first that says anything about a row answers (see above).
DEFAULT_TIERS: tuple[tuple[str, ...], ...] = (("systems",), (KEPLER_CANDIDATES,))

# How a key of the index leads to an object: one of its names, an alias, or composed from
# a host's name and the planet's letter (weakest).
VIA = ("name", "alias", "composed")
NAME, ALIAS, COMPOSED = 0, 1, 2


class MatchKind(StrEnum):
    PLANET = "planet"  # the planet is in OEC: `file` and `path` point at its <planet>
    HOST = "host"  # the planet is new, its host is in OEC: `path` points at the host element
    NONE = "none"  # neither planet nor host is in OEC: a new system
    AMBIGUOUS = "ambiguous"  # names point at more than one object: refused, never guessed


class Match(BaseModel):
    kind: MatchKind
    file: str | None = None  # path of the system file relative to the repo, "/" separated
    path: str | None = None  # lxml element path inside that file, e.g. "/system/star/planet[2]"
    via: str = ""  # how it matched: "name", "alias", "composed", "position"
    matched_name: str | None = None  # the OEC name that matched
    candidates: list[str] = []  # for AMBIGUOUS: "file:path (name)" of each candidate


def match(
    index: AliasIndex,
    record: PlanetRecord,
    *,
    radius_arcsec: float = SAME_STAR_ARCSEC,
    tiers: Sequence[Sequence[str]] = DEFAULT_TIERS,
) -> Match:
    """Where ``record`` belongs in OEC, by the names and positions ``index`` holds; see
    :class:`MatchKind` and the module docstring."""
    return Matcher(index).match(record, radius_arcsec=radius_arcsec, tiers=tiers)


def prepare(records: Iterable[PlanetRecord]) -> None:
    """Normalise the names of ``records`` ahead of matching them (normalised names are
    cached): the embedded run does this while its index is built in another process, which
    warms that process's cache, not the run's (0.5 s of a first run's matching)."""
    for record in records:
        _Query.of(record)


class Matcher:
    """The matching algorithm over one alias index."""

    def __init__(self, index: AliasIndex) -> None:
        self.index = index
        # Read in the inner loops: plain attributes, not the index's properties.
        self._keys = index.key_refs
        self._files = index.file_data
        self._single_star = index.single_star_files

    def match(
        self,
        record: PlanetRecord,
        *,
        radius_arcsec: float = SAME_STAR_ARCSEC,
        tiers: Sequence[Sequence[str]] = DEFAULT_TIERS,
    ) -> Match:
        """Where ``record`` belongs in OEC; see :class:`common.matching.MatchKind`.

        Each tier of folders is tried in turn and the first that says anything answers.
        Within a tier: the record's planet names, then composed names (host names + letter),
        then host names, then the position. Two distinct objects anywhere in that chain make
        the answer AMBIGUOUS.
        """
        query = _Query.of(record)
        for n, tier in enumerate(tiers):
            folders = frozenset(tier)
            found = self._match_tier(query, folders, radius_arcsec)
            if found is None:
                continue
            if n > 0 and folders == {KEPLER_CANDIDATES}:
                return self._candidate_only(found, radius_arcsec)
            return found
        return Match(kind=MatchKind.NONE)

    def _candidate_only(self, found: Match, radius: float) -> Match:
        """What a row that ``systems/`` knows nothing of, but a KOI file does, is.

        The maintainer gives a newly confirmed Kepler planet a new ``systems/`` file and
        leaves the KOI file alone, so the answer is NONE (a new system), whatever the KOI
        file says: its letters are its own and its planets are candidates. Unless the KOI
        star is itself in ``systems/`` under one of its names or within the radius: then it
        is a stale copy of a system the row failed to find, and a new file would duplicate it.
        """
        if found.file is not None:
            files = [found.file]
        else:
            files = sorted({label.partition(":/system")[0] for label in found.candidates})
        known: list[str] = []
        for file in files:
            data = self._files[file]
            for key, _i, via, _name in data.keys:
                if via == COMPOSED:
                    continue
                for folder, other, _planet, _j, _via, _oec in self._keys.get(key, ()):
                    if folder == "systems":
                        known.append(self._label(other, 0))
            if data.ra is not None and data.dec is not None:
                hits = self.index.match_host_position(data.ra, data.dec, radius, ("systems",))
                known += [self._label(h.file, 0) for h in hits]
        if known:
            return _ambiguous([*(self._label(f, 0) for f in files), *known])
        return Match(
            kind=MatchKind.NONE,
            via="kepler candidate",
            matched_name=self._files[files[0]].objects[0].primary,
        )

    def _lookup(
        self,
        keys: Iterable[str],
        folders: frozenset[str],
        planets: bool,
        composed: bool,
        single_star: bool = False,
    ) -> dict[tuple[str, int], tuple[int, str]]:
        """(file, object) -> (best via, OEC name) for objects of one class under ``keys``;
        with ``single_star`` only in files that have one star."""
        hits: dict[tuple[str, int], tuple[int, str]] = {}
        get = self._keys.get
        for key in keys:
            for folder, file, is_planet, i, via, oec_name in get(key, ()):
                if is_planet != planets or folder not in folders:
                    continue
                if via == COMPOSED and not composed:
                    continue
                if single_star and file not in self._single_star:
                    continue
                best = hits.get((file, i))
                if best is None or best[0] > via:
                    hits[(file, i)] = (via, oec_name)
        return hits

    def _label(self, file: str, i: int) -> str:
        obj = self._files[file].objects[i]
        return f"{file}:{obj.path} ({obj.primary or 'nameless ' + obj.kind})"

    def _match_tier(self, q: _Query, folders: frozenset[str], radius: float) -> Match | None:
        planets = self._lookup(q.names, folders, planets=True, composed=False)
        composed = self._lookup(q.composed, folders, planets=True, composed=True)
        composed |= self._lookup(q.primary_of, folders, True, composed=True, single_star=True)
        for ref, (_via, oec_name) in composed.items():
            planets.setdefault(ref, (COMPOSED, oec_name))
        host_hits = self._lookup(q.hosts, folders, planets=False, composed=False)
        host_hits |= self._lookup(q.primary_hosts, folders, False, composed=False, single_star=True)
        hosts = self._reduce_hosts(host_hits)

        if len(planets) > 1:
            return _ambiguous(self._label(f, i) for f, i in planets)
        if not planets:
            # A planet name that OEC gives a star or binary (brown dwarfs such as HD 41004 B b
            # are kept as stars) is the same object: adding it as a planet would duplicate it.
            lookalikes = self._lookup(q.names, folders, planets=False, composed=False)
            if lookalikes:
                return _ambiguous(self._label(f, i) for f, i in lookalikes)
        if planets:
            (file, i), (via, oec_name) = next(iter(planets.items()))
            # Every host name must lead to the planet's own hosts: an ancestor, or a star of
            # the binary it orbits (catalogues give star A as host of a circumbinary planet).
            objects = self._files[file].objects
            planet_path = objects[i].path
            parent_path = objects[objects[i].parent].path + "/"
            strangers = [
                (f, j)
                for f, j in hosts
                if f != file
                or not (
                    planet_path.startswith(objects[j].path + "/")
                    or objects[j].path.startswith(parent_path)
                )
            ]
            if strangers:
                return _ambiguous([self._label(file, i), *(self._label(*r) for r in strangers)])
            return Match(
                kind=MatchKind.PLANET,
                file=file,
                path=self._files[file].objects[i].path,
                via=VIA[via],
                matched_name=oec_name,
            )
        if not hosts:
            # A host name that OEC gives a planet ("HD 24085 B" vs planet "HD 24085 b", names
            # equal once case is folded) would found a second system for that planet.
            lookalikes = self._lookup(q.hosts, folders, planets=True, composed=False)
            if lookalikes:
                return _ambiguous(self._label(f, i) for f, i in lookalikes)
        if len(hosts) > 1:
            return _ambiguous(self._label(f, i) for f, i in hosts)
        if hosts:
            (file, i), (via, oec_name) = next(iter(hosts.items()))
            return self._host_match(file, i, q, VIA[via], oec_name)

        if q.ra is None or q.dec is None:
            return None
        near = self.index.match_host_position(q.ra, q.dec, radius, folders)
        if not near:
            return None
        if len(near) > 1:
            return _ambiguous(f"{h.file}:/system ({h.primary})" for h in near)
        file = near[0].file
        star = self._star_by_position(file, q)
        if isinstance(star, list):
            return _ambiguous(self._label(file, s) for s in star)
        return self._host_match(file, star, q, "position", None)

    def _reduce_hosts(
        self, hits: dict[tuple[str, int], tuple[int, str]]
    ) -> dict[tuple[str, int], tuple[int, str]]:
        """One host per distinct object: ancestors of another hit in the file are dropped, a
        system stands for its only star, or for its only child when that is a binary."""
        out: dict[tuple[str, int], tuple[int, str]] = {}
        for (file, i), hit in hits.items():
            objects = self._files[file].objects
            path = objects[i].path + "/"
            if any(f == file and objects[j].path.startswith(path) for f, j in hits):
                continue
            j = self._host_element(file, i)
            if (file, j) not in out or out[(file, j)][0] > hit[0]:
                out[(file, j)] = hit
        return out

    def _host_element(self, file: str, i: int) -> int:
        objects = self._files[file].objects
        if objects[i].kind != "system":
            return i
        stars = [j for j, o in enumerate(objects) if o.kind == "star"]
        if len(stars) == 1:
            return stars[0]
        children = [j for j, o in enumerate(objects) if o.parent == i]
        if len(children) == 1 and objects[children[0]].kind == "binary":
            return children[0]
        return i

    def _star_by_position(self, file: str, q: _Query) -> int | list[int]:
        """The star of a system found by position, or the candidates when it is not clear.

        A component letter in the row's host name (``"HD 41004 B"``) must be found on the
        star: a new planet of an unlisted companion must not land on the star OEC knows.
        """
        objects = self._files[file].objects
        stars = [j for j, o in enumerate(objects) if o.kind == "star"]
        if not stars:
            return [0]
        components = set(q.components)
        if not components:
            return stars[0] if len(stars) == 1 else stars
        chosen = [j for j in stars if components & self._components_of(file, j)]
        if len(chosen) == 1:
            return chosen[0]
        if len(stars) == 1 and components == {"a"}:
            return stars[0]  # the star OEC lists alone is the primary
        return stars

    def _components_of(self, file: str, i: int) -> set[str]:
        """Component letters the names of object ``i`` end with (``"HD 41004 B"`` -> b)."""
        out: set[str] = set()
        for name in self._names_of(file, i):
            key = normalise(name)
            head, _, last = key.rpartition(" ")
            if head and len(last) == 1 and last.isalpha():
                out.add(last)
        return out

    def _names_of(self, file: str, i: int) -> list[str]:
        return [e[3] for e in self._files[file].keys if e[1] == i and e[2] != COMPOSED]

    def _host_match(self, file: str, i: int, q: _Query, via: str, oec_name: str | None) -> Match:
        objects = self._files[file].objects
        host = objects[i]
        # A planet with the row's letter already under this host, not found by any name: most
        # likely the same planet under a name OEC does not know. Adding it would duplicate it;
        # when its period is the row's too, it is that planet (K2-329 b is EPIC 246193072 b).
        if q.letters:
            prefix = host.path + "/"
            same = [
                j
                for j, o in enumerate(objects)
                if o.kind == "planet" and o.letter in q.letters and o.path.startswith(prefix)
            ]
            if len(same) == 1 and same_period(objects[same[0]].period, q.period):
                planet = objects[same[0]]
                return Match(
                    kind=MatchKind.PLANET,
                    file=file,
                    path=planet.path,
                    via="letter and period",
                    matched_name=planet.primary,
                )
            if same:
                return _ambiguous([self._label(file, i), *(self._label(file, j) for j in same)])
        return Match(kind=MatchKind.HOST, file=file, path=host.path, via=via, matched_name=oec_name)


def _ambiguous(labels: Iterable[str]) -> Match:
    return Match(kind=MatchKind.AMBIGUOUS, candidates=sorted(dict.fromkeys(labels)))


_COMPONENT = re.compile(r"[\s\d][A-Z]$")  # "HD 41004 B", "GJ 667C": a stellar component


def _without_primary(key: str, planet: bool) -> str:
    """``key`` without a component A (``"14 and a b"`` -> ``"14 and b"``), else ""."""
    tokens = key.split(" ")
    at = -2 if planet else -1
    if len(tokens) >= (3 if planet else 2) and tokens[at] == "a":
        del tokens[at]
        return " ".join(tokens)
    return ""


@dataclass(frozen=True, slots=True)
class _Query:
    """The normalised keys of one catalogue row.

    ``primary_of`` and ``primary_hosts`` are the row's names with a component A dropped, for
    files that list one star: exoplanet.eu calls OEC's "14 And b" "14 And Ab", around
    "14 And A", when it knows a companion OEC does not list. Only the only star of a file can
    safely be taken for component A.
    """

    names: tuple[str, ...]
    composed: tuple[str, ...]
    hosts: tuple[str, ...]
    primary_of: tuple[str, ...]
    primary_hosts: tuple[str, ...]
    letters: frozenset[str]
    components: frozenset[str]
    ra: float | None
    dec: float | None
    period: float | None  # days

    @classmethod
    def of(cls, record: PlanetRecord) -> _Query:
        names = [n for n in record.all_names if n and n.strip()]
        hosts = [h for h in record.host_names if h.strip()]
        letter = (record.letter or "").strip()
        split_hosts: list[str] = []
        for i, name in enumerate(names):
            if (split := split_planet_name(name)) is not None:
                split_hosts.append(split[0])
                letter = letter or (split[1] if i == 0 else "")
        name_keys = [k for n in names if (k := normalise(n))]
        composed = [*name_keys]
        if letter:
            composed += [normalise(f"{h} {letter}") for h in hosts]
        host_keys = list(dict.fromkeys(k for h in [*hosts, *split_hosts] if (k := normalise(h))))
        return cls(
            names=tuple(dict.fromkeys(name_keys)),
            composed=tuple(dict.fromkeys(k for k in composed if k)),
            hosts=tuple(host_keys),
            primary_of=tuple(
                dict.fromkeys(k for c in composed if (k := _without_primary(c, True)))
            ),
            primary_hosts=tuple(k for h in host_keys if (k := _without_primary(h, False))),
            letters=frozenset([letter.casefold()] if len(letter) == 1 and letter.isalpha() else []),
            components=frozenset(
                normalise(h).rsplit(" ", 1)[-1] for h in hosts if _COMPONENT.search(h.strip())
            ),
            ra=record.ra,
            dec=record.dec,
            period=_record_period(record),
        )


def _record_period(record: PlanetRecord) -> float | None:
    value = record.planet.get("period")
    try:
        return float(value.value) if value is not None and value.value else None
    except ValueError:
        return None
