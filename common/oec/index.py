"""An alias index over an OEC checkout, pinned to one commit: every name and position.

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

Matching a row against these keys is common/matching.py.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lxml import etree

from common.errors import GitError
from common.gitrepo import each_blob, git, git_bytes, read_blobs, tree_entries
from common.matching import ALIAS, COMPOSED, NAME, SAME_STAR_ARCSEC, VIA
from common.oec.names import normalise, split_planet_name
from common.oec.tree import names_of, parse_system, path_of

__all__ = [
    "FOLDERS",
    "AliasIndex",
    "IndexEntry",
    "PositionHit",
    "parse_dec",
    "parse_ra",
]

FOLDERS = ("systems", "systems_kepler")


_FORMAT = 2  # bump when the pickled state changes shape
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


def _resolve(repo: Path, commit: str | None) -> str:
    return git(repo, "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}").strip()


def _is_system_file(path: str) -> bool:
    folder, _, name = path.partition("/")
    return folder in FOLDERS and "/" not in name and name.endswith(".xml")


def _ls_tree(repo: Path, commit: str) -> dict[str, str]:
    """System file path -> blob sha at ``commit``."""
    entries = tree_entries(repo, commit)
    if entries is None:
        raise GitError("ls-tree", 128, f"fatal: not a valid commit: {commit}")
    return {path: oid for path, (_mode, oid) in entries.items() if _is_system_file(path)}


def _diff(repo: Path, old: str, new: str) -> tuple[list[str], dict[str, str]]:
    """(removed paths, {added or changed path: new blob sha}) between two commits."""
    out = git_bytes(repo, "diff", "--raw", "-z", "-M", "--no-abbrev", old, new, "--", *FOLDERS)
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
                keys.append((key, i, NAME if n == 0 else ALIAS, name))
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
                    keys.append((key, i, COMPOSED, f"{host} {obj.letter}"))
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
        except GitError:
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
        # Parsed as git hands them over, while it reads the next (each_blob); added in file
        # order, which the key lists keep.
        read: dict[str, tuple[bytes, _FileData | Exception]] = {}
        for sha, data in each_blob(self.repo, blobs.values()):
            try:
                read[sha] = (data, _read_file(sha, data))
            except (etree.XMLSyntaxError, ValueError) as exc:
                read[sha] = (data, exc)
        for file, sha in blobs.items():
            data, parsed = read[sha]
            if isinstance(parsed, Exception):
                self.errors[file] = str(parsed)
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
            (d.dec, f, d.ra)
            for f, d in self._files.items()
            if d.ra is not None and d.dec is not None
        )
        # Sorted by declination: a query only looks at the band dec ± radius.
        self._pos_files = [f for _, f, _ in placed]
        self._pos_dec = [dec for dec, _, _ in placed]
        self._pos_ra = [ra for _, _, ra in placed]

    # persistence ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # Texts and the key map are left out: texts are in git, keys are rebuilt in ~0.1 s.
        return {
            "format": _FORMAT,
            "repo": str(self.repo),
            "commit": self.commit,
            "files": self._files,
            "errors": self.errors,
            # Computed from the files (0.05 s), which a run that loads the index keeps.
            "matching_digest": self.matching_digest(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("format") != _FORMAT:
            raise ValueError(f"alias index format {state.get('format')}, expected {_FORMAT}")
        self.__init__(Path(state["repo"]), state["commit"], state["files"])  # type: ignore[misc]
        self.errors = dict(state["errors"])
        self._matching_digest = state.get("matching_digest")

    def save(self, path: Path) -> None:
        Path(path).write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: Path, repo: Path | None = None) -> AliasIndex:
        """An index saved by :meth:`save`; ``repo`` overrides where its blobs are read from."""
        index = cls.unpickled(Path(path).read_bytes(), str(path))
        if repo is not None:
            index.repo = Path(repo)
        return index

    @classmethod
    def unpickled(cls, data: bytes, origin: str) -> AliasIndex:
        """The index of :meth:`save`'s bytes (``origin`` names where they come from)."""
        index = pickle.loads(data)
        if not isinstance(index, cls):
            raise TypeError(f"{origin} does not hold an AliasIndex")
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
        return sum(1 for d in self._files.values() for e in d.keys if e[2] != COMPOSED)

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
        """A digest of everything matching (common/matching.py) reads: names, objects,
        periods and positions of every file, not their blobs. A commit that edits only other
        values keeps it, so what was matched before still holds."""
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
            if (via == COMPOSED and not composed) or (wanted and obj.kind not in wanted):
                continue
            entry = IndexEntry(file, obj.path, obj.kind, obj.primary, oec_name, VIA[via])
            best = entries.get((file, i))
            if best is None or VIA.index(best.via) > via:
                entries[(file, i)] = entry
        return sorted(entries.values(), key=lambda e: (e.file, e.path))

    def shared_keys(self, folders: Iterable[str] = FOLDERS) -> dict[str, list[IndexEntry]]:
        """Keys of real names held by more than one object of the same class (planet / host).

        An object and its ancestors sharing a name (a star named like its system) count as one
        host, as :func:`common.matching.match` treats them.
        """
        allowed = frozenset(folders)
        out: dict[str, list[IndexEntry]] = {}
        for key, refs in self._keys.items():
            for planets in (True, False):
                picked: dict[tuple[str, int], IndexEntry] = {}
                for _folder, file, _planet, i, via, oec_name in refs:
                    obj = self._files[file].objects[i]
                    if via == COMPOSED or (obj.kind == "planet") != planets:
                        continue
                    if file.partition("/")[0] not in allowed:
                        continue
                    entry = IndexEntry(file, obj.path, obj.kind, obj.primary, oec_name, VIA[via])
                    picked.setdefault((file, i), entry)
                distinct = self._distinct(picked)
                if len(distinct) > 1:
                    out.setdefault(key, []).extend(distinct)
        return out

    # --- what the matcher (common/matching.py) reads ---

    @property
    def key_refs(self) -> dict[str, list[_Ref]]:
        """Normalised name -> (folder, file, is planet, object, via, OEC name) of each holder."""
        return self._keys

    @property
    def file_data(self) -> dict[str, _FileData]:
        return self._files

    @property
    def single_star_files(self) -> set[str]:
        return self._single_star

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
        radius_arcsec: float = SAME_STAR_ARCSEC,
        folders: Iterable[str] = FOLDERS,
    ) -> list[PositionHit]:
        """Systems within ``radius_arcsec`` of (``ra``, ``dec``) in degrees, nearest first."""
        if not self._pos_files or not (math.isfinite(ra) and math.isfinite(dec)):
            return []
        band = radius_arcsec / 3600.0
        lo = bisect.bisect_left(self._pos_dec, dec - band)
        hi = bisect.bisect_right(self._pos_dec, dec + band)
        lon, lat = math.radians(ra), math.radians(dec)
        allowed = frozenset(folders)
        hits = []
        # A band holds a handful of systems: plain floats, no numpy (0.1 s to import).
        for file, other_ra, other_dec in zip(
            self._pos_files[lo:hi], self._pos_ra[lo:hi], self._pos_dec[lo:hi], strict=True
        ):
            angle = _angular_separation(lon, lat, math.radians(other_ra), math.radians(other_dec))
            separation = math.degrees(angle) * 3600.0
            if separation <= radius_arcsec and file.partition("/")[0] in allowed:
                primary = self._files[file].objects[0].primary
                hits.append(PositionHit(file, "/system", primary, separation))
        return sorted(hits, key=lambda h: h.separation_arcsec)


def _angular_separation(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """astropy's ``angular_separation`` (Vincenty's formula, exact at every separation),
    written out so that matching does not import astropy.coordinates (~0.5 s per run)."""
    sdlon, cdlon = math.sin(lon2 - lon1), math.cos(lon2 - lon1)
    slat1, clat1 = math.sin(lat1), math.cos(lat1)
    slat2, clat2 = math.sin(lat2), math.cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    denominator = slat1 * slat2 + clat1 * clat2 * cdlon
    return math.atan2(math.hypot(num1, num2), denominator)


# --- the cache of a checkout ---


def index_cache(repo: Path) -> Path:
    """Where the alias index of a checkout is kept between runs: inside its .git."""
    return repo / ".git" / "oec-sync" / "index.pickle"


def pickled_index(repo: Path, commit: str) -> bytes:
    """The index of ``commit`` built anew, as :meth:`AliasIndex.save` keeps it."""
    return pickle.dumps(AliasIndex.build(repo, commit), protocol=pickle.HIGHEST_PROTOCOL)


def load_index(
    repo: Path, commit: str, build: Callable[[Path, str], bytes] = pickled_index
) -> AliasIndex:
    """The index at ``commit``: from the cache, refreshed incrementally, or built anew with
    ``build`` (:func:`pickled_index`; the embedded run builds it in a child while it reads
    the catalogues). What ``build`` answers is the cache's bytes: the child pickled the
    index to send it, and pickling it again here cost a first run 0.1 s."""
    cache = index_cache(repo)
    index: AliasIndex | None = None
    if cache.exists():
        try:
            index = AliasIndex.load(cache)
        except Exception:  # a cache written by another version is simply rebuilt
            index = None
    if index is not None and index.commit == commit:
        return index
    cache.parent.mkdir(parents=True, exist_ok=True)
    if index is not None:
        index.refresh(repo, commit).save(cache)
        return index
    pickled = build(repo, commit)
    cache.write_bytes(pickled)
    return AliasIndex.unpickled(pickled, f"the index built for {commit[:12]}")
