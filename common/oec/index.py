"""An alias index over an OEC checkout, pinned to one commit, and catalogue-row matching.

Reading. Every system file of ``systems/`` and ``systems_kepler/`` is read from the git object
database at one commit (one ``git ls-tree`` + one ``git cat-file --batch``), never from the
working tree, so uncommitted edits cannot leak into a run. :meth:`AliasIndex.refresh` moves
the index to a newer commit re-reading only what ``git diff --raw -M`` lists.

Keys. Every ``<name>`` of a system, binary, star or planet is stored under its normalised key
(:func:`common.oec.names.normalise`) with the file, the lxml path of the element, its kind and
primary name. Planets also get *composed* names: the names of each host above them (parent
star or binary, binaries and the system further up) joined with the planet's letter, so
``"KIC 6541920 b"`` finds ``Kepler-11 b`` and ``"HD 126614 b"`` finds ``HD 126614 A b``. A host
lends its names only when no other planet under it has the same letter, and a name that also
belongs to an object off the planet's line of hosts is not lent (``HD 41004``'s system is also
called ``HD 41004 B``, which is star B). System positions are kept for a sky-position fallback.

Matching (:meth:`AliasIndex.match`) refuses instead of guessing: when the row's names point at
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

import hashlib
import math
import pickle
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from lxml import etree

from common.gitrepo import read_blobs, tree_entries
from common.matching import Match, MatchKind
from common.numbers import same_period
from common.oec.names import normalise, split_planet_name
from common.oec.tree import names_of, parse_system, path_of
from common.records import PlanetRecord

__all__ = [
    "DEFAULT_RADIUS_ARCSEC",
    "DEFAULT_TIERS",
    "FOLDERS",
    "KEPLER_CANDIDATES",
    "AliasIndex",
    "IndexEntry",
    "PositionHit",
    "parse_dec",
    "parse_ra",
]

FOLDERS = ("systems", "systems_kepler")
KEPLER_CANDIDATES = "systems_kepler"
DEFAULT_TIERS: tuple[tuple[str, ...], ...] = (("systems",), (KEPLER_CANDIDATES,))

# 10″, measured on the snapshot: of the catalogue rows whose planet OEC already holds by name,
# 89–90 % lie within 5″ of OEC's system position and 95–96 % within 10″ (NASA and
# exoplanet.eu alike; the rest are high proper motion stars, 16 years of it between J2000 and
# Gaia epochs, or plain wrong positions). systems_kepler rounds RA to whole seconds (up to
# 7.5″ · cos δ). Wider is not needed and would be riskier, though no two distinct systems of
# systems/ lie within 30″ of each other (only the six duplicated microlensing events do).
DEFAULT_RADIUS_ARCSEC = 10.0

_FORMAT = 2  # bump when the pickled state changes shape
_VIA = ("name", "alias", "composed")
_NAME, _ALIAS, _COMPOSED = 0, 1, 2
_OBJECT_TAGS = ("system", "binary", "star", "planet")


class _Obj(NamedTuple):
    """One object of a system file."""

    path: str
    kind: str
    primary: str  # "" for a nameless binary
    parent: int  # index of the parent object in the file, -1 for the system
    letter: str  # the planet letter (casefolded) from the primary name, "" when none
    period: float | None  # a planet's <period> in days, None when it has none


class _FileData(NamedTuple):
    """What the index keeps of one system file; plain data so it pickles fast."""

    blob: str
    objects: tuple[_Obj, ...]
    # (key, object index, via, OEC name); composed names carry the composed text
    keys: tuple[tuple[str, int, int, str], ...]
    ra: float | None  # degrees
    dec: float | None


# (folder, file, is planet, object index, via, OEC name): flat, so lookups touch nothing else
_Ref = tuple[str, str, bool, int, int, str]


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One object a name points at."""

    file: str  # path relative to the repo, "/" separated
    path: str  # lxml path of the element, e.g. "/system/star/planet[2]"
    kind: str  # "system", "binary", "star" or "planet"
    primary: str  # the object's first <name> ("" for a nameless binary)
    name: str  # the OEC name that matched (composed text for composed names)
    via: str  # "name" (primary), "alias" or "composed"

    def label(self) -> str:
        return f"{self.file}:{self.path} ({self.primary or self.name})"


@dataclass(frozen=True, slots=True)
class PositionHit:
    """A system within the search radius of a position."""

    file: str
    path: str  # always "/system"
    primary: str
    separation_arcsec: float


# --- positions ---------------------------------------------------------------------------

_SEXAGESIMAL = re.compile(
    r"^\s*([+-]?)\s*(\d+(?:\.\d*)?)(?:\s+(\d+(?:\.\d*)?))?(?:\s+(\d+(?:\.\d*)?))?\s*$"
)


def _sexagesimal(text: str | None) -> tuple[float, float] | None:
    if not text or not (m := _SEXAGESIMAL.match(text)):
        return None
    sign = -1.0 if m[1] == "-" else 1.0
    value = float(m[2]) + float(m[3] or 0) / 60 + float(m[4] or 0) / 3600
    return sign, value


def parse_ra(text: str | None) -> float | None:
    """OEC ``rightascension`` (``"hh mm ss.s"``) in degrees, None when absent or malformed."""
    parsed = _sexagesimal(text)
    if parsed is None or parsed[0] < 0 or parsed[1] >= 24:
        return None
    return parsed[1] * 15.0


def parse_dec(text: str | None) -> float | None:
    """OEC ``declination`` (``"±dd mm ss.s"``) in degrees, None when absent or malformed."""
    parsed = _sexagesimal(text)
    if parsed is None or parsed[1] > 90:
        return None
    return parsed[0] * parsed[1]


# --- git ------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], input=input, capture_output=True, check=False
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {message}")
    return result.stdout


def _resolve(repo: Path, commit: str | None) -> str:
    return _git(repo, "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}").decode().strip()


def _is_system_file(path: str) -> bool:
    folder, _, name = path.partition("/")
    return folder in FOLDERS and "/" not in name and name.endswith(".xml")


def _ls_tree(repo: Path, commit: str) -> dict[str, str]:
    """System file path -> blob sha at ``commit``."""
    entries = tree_entries(repo, commit)
    if entries is None:
        raise RuntimeError(f"git ls-tree failed in {repo} for {commit}")
    return {path: oid for path, (_mode, oid) in entries.items() if _is_system_file(path)}


def _diff(repo: Path, old: str, new: str) -> tuple[list[str], dict[str, str]]:
    """(removed paths, {added or changed path: new blob sha}) between two commits."""
    out = _git(repo, "diff", "--raw", "-z", "-M", "--no-abbrev", old, new, "--", *FOLDERS)
    fields = out.decode().split("\0")
    removed: list[str] = []
    changed: dict[str, str] = {}
    i = 0
    while i < len(fields) and fields[i]:
        meta = fields[i].lstrip(":").split()
        status, new_sha = meta[4], meta[3]
        if status[0] in "RC":
            old_path, new_path = fields[i + 1], fields[i + 2]
            i += 3
        else:
            old_path = new_path = fields[i + 1]
            i += 2
        if status[0] in "RD":
            removed.append(old_path)
        if status[0] != "D" and _is_system_file(new_path):
            changed[new_path] = new_sha
    return [p for p in removed if _is_system_file(p)], changed


# --- reading one file -------------------------------------------------------------------------


def _planet_letter(primary: str) -> str:
    split = split_planet_name(primary, uppercase=True)
    if split is None or len(split[1]) != 1 or not split[1].isalpha():
        return ""
    return split[1].casefold()


def _period(planet: etree._Element) -> float | None:
    text = next((e.text for e in planet.iterchildren("period")), None)
    try:
        period = float(text) if text else None
    except ValueError:
        return None
    return period if period is not None and math.isfinite(period) and period > 0 else None


def _read_file(blob: str, data: bytes) -> _FileData:
    root = parse_system(data)
    elements = list(root.iter(*_OBJECT_TAGS))
    position = {el: i for i, el in enumerate(elements)}
    objects: list[_Obj] = []
    all_names: list[list[str]] = []
    for el in elements:
        names = names_of(el)
        parent = el.getparent()
        kind = str(el.tag)
        objects.append(
            _Obj(
                path=path_of(el),
                kind=kind,
                primary=names[0] if names else "",
                parent=position[parent] if parent is not None else -1,
                letter=_planet_letter(names[0]) if kind == "planet" and names else "",
                period=_period(el) if kind == "planet" else None,
            )
        )
        all_names.append(names)
    # How many planets under each object carry each letter: an ancestor's names compose with
    # a planet's letter only when no other planet under it has that letter.
    letters_under: list[dict[str, int]] = [{} for _ in objects]
    for obj in objects:
        if obj.kind == "planet" and obj.letter:
            ancestor = obj.parent
            while ancestor >= 0:
                counts = letters_under[ancestor]
                counts[obj.letter] = counts.get(obj.letter, 0) + 1
                ancestor = objects[ancestor].parent

    name_keys = [[normalise(name) for name in names] for names in all_names]
    owners: dict[str, set[int]] = {}
    for i, obj_keys in enumerate(name_keys):
        for key in obj_keys:
            owners.setdefault(key, set()).add(i)
    # Per parent: the ancestors and their names (key -> text) that may stand for a host.
    hosts_of: dict[int, tuple[set[int], list[tuple[int, dict[str, str]]]]] = {}

    keys: list[tuple[str, int, int, str]] = []
    for i, (obj, names) in enumerate(zip(objects, all_names, strict=True)):
        seen: set[str] = set()
        for n, (name, key) in enumerate(zip(names, name_keys[i], strict=True)):
            if key and key not in seen:
                seen.add(key)
                keys.append((key, i, _NAME if n == 0 else _ALIAS, name))
        if obj.kind != "planet" or not obj.letter:
            continue
        if obj.parent not in hosts_of:
            chain = _ancestors(objects, i)
            named = []
            for a in sorted(chain, reverse=True):  # nearest host first
                # A system alias that is also a star's name ("HD 41004 B") means that star.
                usable = {
                    k: name
                    for name, k in zip(all_names[a], name_keys[a], strict=True)
                    if k and owners[k] <= chain
                }
                named.append((a, usable))
            hosts_of[obj.parent] = (chain, named)
        for a, usable in hosts_of[obj.parent][1]:
            if letters_under[a].get(obj.letter) != 1:
                continue  # another planet under this host has the letter too
            for host_key, host in usable.items():
                # Same as normalise(f"{host} {letter}") for a one-letter suffix, and the host
                # key is already at hand: composing this way halves the build time.
                key = f"{host_key} {obj.letter}"
                if key not in seen:
                    seen.add(key)
                    keys.append((key, i, _COMPOSED, f"{host} {obj.letter}"))
    # iterchildren is C; findtext goes through ElementPath and costs a tenth of the build.
    ra = parse_ra(next((e.text for e in root.iterchildren("rightascension")), None))
    dec = parse_dec(next((e.text for e in root.iterchildren("declination")), None))
    if ra is None or dec is None:
        ra = dec = None
    return _FileData(blob, tuple(objects), tuple(keys), ra, dec)


def _ancestors(objects: list[_Obj], i: int) -> set[int]:
    out: set[int] = set()
    ancestor = objects[i].parent
    while ancestor >= 0:
        out.add(ancestor)
        ancestor = objects[ancestor].parent
    return out


# --- the index --------------------------------------------------------------------------------


class AliasIndex:
    """Normalised names of every OEC object at one commit; see the module docstring."""

    def __init__(self, repo: Path, commit: str, files: dict[str, _FileData]) -> None:
        self.repo = Path(repo)
        self.commit = commit
        self._files = files
        self.errors: dict[str, str] = {}  # file -> why it could not be read
        self._texts: dict[str, bytes] = {}
        self._matching_digest: str | None = None
        self._keys: dict[str, list[_Ref]] = {}
        self._single_star: set[str] = set()  # files with exactly one star
        for file, data in files.items():
            self._add_keys(file, data)
        self._build_positions()

    # construction ---------------------------------------------------------------------------

    @classmethod
    def build(cls, repo: Path, commit: str | None = None) -> AliasIndex:
        """Index every system file of ``repo`` at ``commit`` (default HEAD)."""
        repo = Path(repo)
        sha = _resolve(repo, commit)
        blobs = _ls_tree(repo, sha)
        index = cls(repo, sha, {})
        index._read(blobs)
        return index

    def refresh(self, repo: Path | None = None, commit: str | None = None) -> AliasIndex:
        """Move the index to ``commit`` (default HEAD), re-reading only the files that changed.

        Works in place and returns ``self``. Falls back to a full build when the pinned commit
        is no longer in the repository.
        """
        repo = Path(repo) if repo is not None else self.repo
        sha = _resolve(repo, commit)
        try:
            _resolve(repo, self.commit)
        except RuntimeError:
            fresh = AliasIndex.build(repo, sha)
            self.__setstate__(fresh.__getstate__())
            return self
        self.repo = repo
        if sha != self.commit:
            removed, changed = _diff(repo, self.commit, sha)
            for file in [*removed, *changed]:
                self._remove(file)
            self._read(changed)
            self.commit = sha
        return self

    def _read(self, blobs: dict[str, str]) -> None:
        self._matching_digest = None
        contents = read_blobs(self.repo, blobs.values())
        for file, sha in blobs.items():
            data = contents[sha]
            try:
                parsed = _read_file(sha, data)
            except (etree.XMLSyntaxError, ValueError) as exc:
                self.errors[file] = str(exc)
                continue
            self._files[file] = parsed
            self._texts[file] = data  # decoded when asked for
            self._add_keys(file, parsed)
        self._build_positions()

    def _add_keys(self, file: str, data: _FileData) -> None:
        folder = file.partition("/")[0]
        objects = data.objects
        if sum(1 for o in objects if o.kind == "star") == 1:
            self._single_star.add(file)
        keys = self._keys
        for key, i, via, name in data.keys:
            ref = (folder, file, objects[i].kind == "planet", i, via, name)
            if (refs := keys.get(key)) is None:
                keys[key] = [ref]
            else:
                refs.append(ref)

    def _remove(self, file: str) -> None:
        self._matching_digest = None
        self.errors.pop(file, None)
        self._single_star.discard(file)
        self._texts.pop(file, None)
        data = self._files.pop(file, None)
        if data is None:
            return
        for key in {entry[0] for entry in data.keys}:
            kept = [ref for ref in self._keys[key] if ref[1] != file]
            if kept:
                self._keys[key] = kept
            else:
                del self._keys[key]

    def _build_positions(self) -> None:
        placed = sorted(
            (d.dec, f) for f, d in self._files.items() if d.ra is not None and d.dec is not None
        )
        # Sorted by declination: a query only looks at the band dec ± radius.
        self._pos_files = [f for _, f in placed]
        self._pos_dec = np.array([d for d, _ in placed], dtype=float)
        self._pos_ra = np.array([self._files[f].ra for f in self._pos_files], dtype=float)

    # persistence ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # Texts and the key map are left out: texts are in git, keys are rebuilt in ~0.1 s.
        return {
            "format": _FORMAT,
            "repo": str(self.repo),
            "commit": self.commit,
            "files": self._files,
            "errors": self.errors,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("format") != _FORMAT:
            raise ValueError(f"alias index format {state.get('format')}, expected {_FORMAT}")
        self.__init__(Path(state["repo"]), state["commit"], state["files"])  # type: ignore[misc]
        self.errors = dict(state["errors"])

    def save(self, path: Path) -> None:
        Path(path).write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: Path, repo: Path | None = None) -> AliasIndex:
        """An index saved by :meth:`save`; ``repo`` overrides where its blobs are read from."""
        index = pickle.loads(Path(path).read_bytes())
        if not isinstance(index, cls):
            raise TypeError(f"{path} does not hold an AliasIndex")
        if repo is not None:
            index.repo = Path(repo)
        return index

    # plain queries ---------------------------------------------------------------------------

    @property
    def files(self) -> int:
        """How many system files are indexed."""
        return len(self._files)

    def file_names(self) -> list[str]:
        return sorted(self._files)

    @property
    def names(self) -> int:
        """How many (key, object) pairs come from real ``<name>`` tags."""
        return sum(1 for d in self._files.values() for e in d.keys if e[2] != _COMPOSED)

    def system_text(self, file: str) -> str:
        """The text of ``file`` at the pinned commit."""
        return self.system_texts([file])[file]

    def system_texts(self, files: Iterable[str]) -> dict[str, str]:
        """Texts of several files at the pinned commit, read from git in one process."""
        wanted = list(files)
        missing = [f for f in wanted if f not in self._texts]
        if missing:
            unknown = [f for f in missing if f not in self._files]
            if unknown:
                raise KeyError(f"not in the index at {self.commit[:12]}: {unknown[0]}")
            blobs = read_blobs(self.repo, (self._files[f].blob for f in missing))
            for f in missing:
                self._texts[f] = blobs[self._files[f].blob]
        return {f: self._texts[f].decode("utf-8") for f in wanted}

    def matching_digest(self) -> str:
        """A digest of everything :meth:`match` reads: names, objects, periods and positions
        of every file, not their blobs. A commit that edits only other values keeps it, so
        what was matched before still holds."""
        if self._matching_digest is None:
            hashed = hashlib.sha256()
            for file in sorted(self._files):
                data = self._files[file]
                hashed.update(repr((file, data.objects, data.keys, data.ra, data.dec)).encode())
            self._matching_digest = hashed.hexdigest()
        return self._matching_digest

    def blob(self, file: str) -> str:
        """The git blob sha of ``file`` at the pinned commit."""
        return self._files[file].blob

    def find_names(
        self, name: str, *, composed: bool = False, kinds: Iterable[str] | None = None
    ) -> list[IndexEntry]:
        """Every object one of whose names normalises like ``name`` (one entry per object)."""
        wanted = frozenset(kinds) if kinds is not None else None
        entries: dict[tuple[str, int], IndexEntry] = {}
        for _folder, file, _planet, i, via, oec_name in self._keys.get(normalise(name), ()):
            obj = self._files[file].objects[i]
            if (via == _COMPOSED and not composed) or (wanted and obj.kind not in wanted):
                continue
            entry = IndexEntry(file, obj.path, obj.kind, obj.primary, oec_name, _VIA[via])
            best = entries.get((file, i))
            if best is None or _VIA.index(best.via) > via:
                entries[(file, i)] = entry
        return sorted(entries.values(), key=lambda e: (e.file, e.path))

    def shared_keys(self, folders: Iterable[str] = FOLDERS) -> dict[str, list[IndexEntry]]:
        """Keys of real names held by more than one object of the same class (planet / host).

        An object and its ancestors sharing a name (a star named like its system) count as one
        host, as :meth:`match` treats them.
        """
        allowed = frozenset(folders)
        out: dict[str, list[IndexEntry]] = {}
        for key, refs in self._keys.items():
            for planets in (True, False):
                picked: dict[tuple[str, int], IndexEntry] = {}
                for _folder, file, _planet, i, via, oec_name in refs:
                    obj = self._files[file].objects[i]
                    if via == _COMPOSED or (obj.kind == "planet") != planets:
                        continue
                    if file.partition("/")[0] not in allowed:
                        continue
                    entry = IndexEntry(file, obj.path, obj.kind, obj.primary, oec_name, _VIA[via])
                    picked.setdefault((file, i), entry)
                distinct = self._distinct(picked)
                if len(distinct) > 1:
                    out.setdefault(key, []).extend(distinct)
        return out

    def _distinct(self, picked: dict[tuple[str, int], IndexEntry]) -> list[IndexEntry]:
        """Drop objects whose descendant in the same file is also picked."""
        paths = {(e.file, e.path) for e in picked.values()}
        return [
            e
            for e in picked.values()
            if not any(f == e.file and p.startswith(e.path + "/") for f, p in paths)
        ]

    def match_host_position(
        self,
        ra: float,
        dec: float,
        radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
        folders: Iterable[str] = FOLDERS,
    ) -> list[PositionHit]:
        """Systems within ``radius_arcsec`` of (``ra``, ``dec``) in degrees, nearest first."""
        if not self._pos_files or not (math.isfinite(ra) and math.isfinite(dec)):
            return []
        band = radius_arcsec / 3600.0
        lo = int(np.searchsorted(self._pos_dec, dec - band, side="left"))
        hi = int(np.searchsorted(self._pos_dec, dec + band, side="right"))
        if hi <= lo:
            return []
        sep = (
            np.degrees(
                _angular_separation(
                    math.radians(ra),
                    math.radians(dec),
                    np.radians(self._pos_ra[lo:hi]),
                    np.radians(self._pos_dec[lo:hi]),
                )
            )
            * 3600.0
        )
        allowed = frozenset(folders)
        hits = []
        for file, separation in zip(self._pos_files[lo:hi], sep.tolist(), strict=True):
            if separation <= radius_arcsec and file.partition("/")[0] in allowed:
                primary = self._files[file].objects[0].primary
                hits.append(PositionHit(file, "/system", primary, separation))
        return sorted(hits, key=lambda h: h.separation_arcsec)

    # matching -------------------------------------------------------------------------------

    def match(
        self,
        record: PlanetRecord,
        *,
        radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
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
                if via == _COMPOSED:
                    continue
                for folder, other, _planet, _j, _via, _oec in self._keys.get(key, ()):
                    if folder == "systems":
                        known.append(self._label(other, 0))
            if data.ra is not None and data.dec is not None:
                hits = self.match_host_position(data.ra, data.dec, radius, ("systems",))
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
                if via == _COMPOSED and not composed:
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
            planets.setdefault(ref, (_COMPOSED, oec_name))
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
                via=_VIA[via],
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
            return self._host_match(file, i, q, _VIA[via], oec_name)

        if q.ra is None or q.dec is None:
            return None
        near = self.match_host_position(q.ra, q.dec, radius, folders)
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
        return [e[3] for e in self._files[file].keys if e[1] == i and e[2] != _COMPOSED]

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


def _angular_separation(lon1: float, lat1: float, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """astropy's ``angular_separation`` (Vincenty's formula, exact at every separation),
    written out so that matching does not import astropy.coordinates (~0.5 s per run)."""
    sdlon, cdlon = np.sin(lon2 - lon1), np.cos(lon2 - lon1)
    slat1, clat1 = math.sin(lat1), math.cos(lat1)
    slat2, clat2 = np.sin(lat2), np.cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    denominator = slat1 * slat2 + clat1 * clat2 * cdlon
    separation: np.ndarray = np.arctan2(np.hypot(num1, num2), denominator)
    return separation


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
