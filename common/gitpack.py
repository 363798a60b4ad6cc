"""A run's one-file commits written as a git pack and its index, without a git process.

Each branch's commit is its base commit with one file replaced (or added). Its objects:

    blob    the new text
    trees   one per directory on the file's path, each the base's tree with one entry
            replaced; stored as a delta of the base's tree (copy the bytes before the
            entry, insert the new entry, copy the bytes after), the base's tree itself
            stored once in the pack in full (a pack on disk must hold its delta bases)
    commit  tree, parent, author and committer at one time stamp, message

so 4,330 branches of OEC (whose ``systems/`` tree is 170 kB) make one 15 MB pack (the
blobs stored uncompressed, see ``_LEVEL``), most of the work hashing each new tree (git
names an object by the SHA-1 of its full content; :meth:`Tree.id_of` hashes only from the
changed entry on): 0.48 s of CPU on two threads for a first run's branches (0.65 s when
every tree was hashed whole).
Git's formats: Documentation/gitformat-pack.txt (pack, version 2 index) and
gitformat-pack.txt "Deltified representation" (copy and insert instructions).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import GitError
from common.gitrepo import AUTHOR, BranchCommit

_COMMIT, _TREE, _BLOB, _OFS_DELTA = 1, 2, 3, 6
_TYPES = {_COMMIT: b"commit", _TREE: b"tree", _BLOB: b"blob"}
FILE_MODE = b"100644"  # what fast-import's "M 100644" wrote: every file a plain file
TREE_MODE = b"40000"
# Stored, not compressed (zlib level 0): compressing the blobs of 4,400 branches took
# 0.4 s of a 3 s budget to save 6 MB; trees are deltas of a few dozen bytes. ``git gc``
# compresses them when it repacks.
_LEVEL = 0


def object_id(kind: int, data: bytes) -> bytes:
    """The binary id git gives an object of this kind and content."""
    return hashlib.sha1(b"%s %d\x00" % (_TYPES[kind], len(data)) + data).digest()


@dataclass
class Tree:
    """A tree object's bytes, and where each entry starts (entries in git's order)."""

    raw: bytes
    keys: list[bytes]  # sort key of each entry: its name, plus "/" for a directory
    starts: list[int]
    names: dict[bytes, int]  # entry name -> index
    _states: list[Any] | None = field(default=None, repr=False)  # see hash_states

    @classmethod
    def parse(cls, raw: bytes) -> Tree:
        keys: list[bytes] = []
        starts: list[int] = []
        names: dict[bytes, int] = {}
        pos = 0
        while pos < len(raw):
            space = raw.index(b" ", pos)
            nul = raw.index(b"\x00", space)
            name = raw[space + 1 : nul]
            names[name] = len(keys)
            keys.append(name + b"/" if raw[pos:space] == TREE_MODE else name)
            starts.append(pos)
            pos = nul + 21
        return cls(raw, keys, starts, names)

    def entry(self, name: bytes) -> tuple[bytes, bytes] | None:
        """(mode, binary id) of the entry ``name``, None if there is none."""
        index = self.names.get(name)
        if index is None:
            return None
        start = self.starts[index]
        space = self.raw.index(b" ", start)
        nul = self.raw.index(b"\x00", space)
        return self.raw[start:space], self.raw[nul + 1 : nul + 21]

    def _end(self, index: int) -> int:
        return self.starts[index + 1] if index + 1 < len(self.starts) else len(self.raw)

    def with_entry(self, mode: bytes, name: bytes, oid: bytes) -> list[tuple[int, int] | bytes]:
        """This tree with the entry ``name`` set to (mode, oid), as delta instructions:
        (offset, size) copies from this tree and inserted bytes."""
        entry = b"%s %s\x00%s" % (mode, name, oid)
        key = name + b"/" if mode == TREE_MODE else name
        at = bisect.bisect_left(self.keys, key)
        insert = self.starts[at] if at < len(self.starts) else len(self.raw)
        old = self.names.get(name)
        # The old entry goes (it may sort elsewhere when a file becomes a directory).
        cut = (self.starts[old], self._end(old)) if old is not None else (insert, insert)
        first, second = sorted([(insert, insert), cut])
        pieces: list[tuple[int, int] | bytes] = [(0, first[0])]
        if first == (insert, insert):
            pieces += [entry, (insert, cut[0] - insert)]
        else:
            pieces += [(cut[1], insert - cut[1]), entry]
        pieces.append((second[1], len(self.raw) - second[1]))
        return [p for p in pieces if not isinstance(p, tuple) or p[1] > 0]

    def id_of(self, pieces: list[tuple[int, int] | bytes], size: int) -> bytes:
        """The id of the tree that ``pieces`` (:meth:`with_entry`, ``size`` bytes) make of
        this one, without making it. Where it has this tree's size and starts with its
        bytes up to an entry (a file's entry replaced), hashing goes on from the SHA-1 state
        this tree's own hash has there: only what follows is hashed (half of OEC's 170 kB
        ``systems`` tree on average, for each of a first run's 4,330 branches)."""
        state = None
        head = pieces[0]
        if size == len(self.raw) and isinstance(head, tuple) and head[0] == 0:
            at = bisect.bisect_left(self.starts, head[1])
            if at < len(self.starts) and self.starts[at] == head[1]:
                state = self.hash_states()[at].copy()
                pieces = pieces[1:]
        if state is None:
            state = hashlib.sha1(b"tree %d\x00" % size)
        view = memoryview(self.raw)
        for piece in pieces:
            state.update(
                piece if isinstance(piece, bytes) else view[piece[0] : piece[0] + piece[1]]
            )
        return state.digest()

    def hash_states(self) -> list[Any]:
        """The SHA-1 state of this tree's object (header and bytes) at each entry's start.
        Two threads may make them at once; either list is right."""
        if self._states is None:
            state = hashlib.sha1(b"tree %d\x00" % len(self.raw))
            view = memoryview(self.raw)
            states = []
            done = 0
            for start in self.starts:
                state.update(view[done:start])
                done = start
                states.append(state.copy())
            self._states = states
        return self._states


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def delta(source_size: int, pieces: list[tuple[int, int] | bytes], size: int) -> bytes:
    """Git's delta data that makes a ``size``-byte object from a ``source_size``-byte one."""
    out = bytearray(_varint(source_size) + _varint(size))
    for piece in pieces:
        if isinstance(piece, bytes):
            for start in range(0, len(piece), 127):
                chunk = piece[start : start + 127]
                out.append(len(chunk))
                out += chunk
            continue
        offset, length = piece
        while length:
            step = min(length, 0xFFFFFF)  # a copy's size has three bytes
            command = 0x80
            args = bytearray()
            for i in range(4):
                if (offset >> (8 * i)) & 0xFF:
                    command |= 1 << i
                    args.append((offset >> (8 * i)) & 0xFF)
            for i in range(3):
                if (step >> (8 * i)) & 0xFF:
                    command |= 0x10 << i
                    args.append((step >> (8 * i)) & 0xFF)
            out.append(command)
            out += args
            offset += step
            length -= step
    return bytes(out)


class PackWriter:
    """Objects appended one by one, each at most once; :meth:`finish` writes the pack and
    its version 2 index."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.offsets: dict[bytes, int] = {}
        self.crcs: dict[bytes, int] = {}

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.offsets

    def _header(self, kind: int, size: int) -> bytearray:
        out = bytearray([(kind << 4) | (size & 0x0F)])
        size >>= 4
        while size:
            out[-1] |= 0x80
            out.append(size & 0x7F)
            size >>= 7
        return out

    def add(self, oid: bytes, kind: int, data: bytes) -> None:
        if oid in self.offsets:
            return
        record = self._header(kind, len(data)) + zlib.compress(data, _LEVEL)
        self._append(oid, record)

    def add_delta(self, oid: bytes, base: bytes, data: bytes) -> None:
        """``oid`` as ``data`` (:func:`delta`) against ``base``, which must be in the pack."""
        if oid in self.offsets:
            return
        distance = len(self.body) + 12 - self.offsets[base]
        encoded = bytearray([distance & 0x7F])
        distance >>= 7
        while distance:
            distance -= 1
            encoded.insert(0, 0x80 | (distance & 0x7F))
            distance >>= 7
        record = self._header(_OFS_DELTA, len(data)) + encoded + zlib.compress(data, _LEVEL)
        self._append(oid, record)

    def _append(self, oid: bytes, record: bytes | bytearray) -> None:
        self.offsets[oid] = len(self.body) + 12  # after the pack header
        self.crcs[oid] = zlib.crc32(record)
        self.body += record

    def finish(self, directory: Path) -> Path:
        """Write ``pack-<checksum>.pack`` and then its ``.idx``; the index's path."""
        header = b"PACK" + struct.pack(">II", 2, len(self.offsets))
        checksum = hashlib.sha1(header)
        checksum.update(self.body)
        trailer = checksum.digest()
        ids = sorted(self.offsets)
        fanout = [0] * 256
        for oid in ids:
            fanout[oid[0]] += 1
        total = 0
        for i in range(256):
            total += fanout[i]
            fanout[i] = total
        small: list[int] = []
        large: list[int] = []
        for oid in ids:
            offset = self.offsets[oid]
            if offset < 0x80000000:
                small.append(offset)
            else:
                small.append(0x80000000 | len(large))
                large.append(offset)
        index = bytearray(b"\xfftOc" + struct.pack(">I", 2))
        index += struct.pack(">256I", *fanout)
        index += b"".join(ids)
        index += struct.pack(f">{len(ids)}I", *(self.crcs[oid] for oid in ids))
        index += struct.pack(f">{len(ids)}I", *small)
        index += struct.pack(f">{len(large)}Q", *large)
        index += trailer
        index += hashlib.sha1(index).digest()
        name = f"pack-{trailer.hex()}"
        # Both on disk before any ref can point into them (as git's own pack writers do).
        for path, parts in (
            (directory / f"{name}.pack", (header, self.body, trailer)),
            (directory / f"{name}.idx", (index,)),
        ):
            with path.open("wb") as out:
                for part in parts:
                    out.write(part)
                out.flush()
                os.fsync(out.fileno())
        return directory / f"{name}.idx"


class _Objects:
    """Objects of a repository read through one ``git cat-file --batch``."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.trees: dict[bytes, Tree] = {}
        self.roots: dict[str, bytes] = {}  # commit -> its tree

    def read(self, oid: str) -> tuple[str, bytes] | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(oid.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3:
            return None
        data = self.proc.stdout.read(int(header[2]) + 1)[:-1]
        return header[1].decode(), data

    def tree(self, oid: bytes) -> Tree:
        if oid not in self.trees:
            found = self.read(oid.hex())
            if found is None or found[0] != "tree":
                raise GitError("cat-file", 128, f"fatal: not a tree: {oid.hex()}")
            self.trees[oid] = Tree.parse(found[1])
        return self.trees[oid]

    def root_tree(self, commit: str) -> bytes:
        if commit not in self.roots:
            found = self.read(commit)
            if found is None or found[0] != "commit":
                raise GitError("cat-file", 128, f"fatal: not a valid commit: {commit}")
            self.roots[commit] = bytes.fromhex(found[1][5:45].decode())
        return self.roots[commit]


@contextmanager
def _objects(repo: Path) -> Iterator[_Objects]:
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        process_group=0,
    )
    try:
        yield _Objects(proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class _Planned:
    commit: BranchCommit
    dirs: list[bytes]  # the directories of the file's path, top first
    leaf: bytes  # the file's name in the last of them
    trees: list[bytes | None]  # the base's tree of the root and of each directory (None: new)


def _plan(objects: _Objects, c: BranchCommit) -> _Planned:
    *dirs, leaf = c.file.encode("utf-8").split(b"/")
    trees: list[bytes | None] = [objects.root_tree(c.base)]
    for name in dirs:
        parent = trees[-1]
        found = objects.tree(parent).entry(name) if parent is not None else None
        trees.append(found[1] if found is not None and found[0] == TREE_MODE else None)
    for oid in trees:
        if oid is not None:
            objects.tree(oid)  # read now, for the workers
    return _Planned(c, dirs, leaf, trees)


def write_packs(
    repo: Path,
    directory: Path,
    commits: list[BranchCommit],
    stamp: int,
    workers: int = 1,
    advance: Callable[[int], object] = lambda n: None,
) -> dict[str, str]:
    """Write the objects of ``commits`` (bases read from ``repo``) into ``directory`` as
    one pack per worker; each branch's commit id. ``stamp``: author and committer time,
    Unix seconds, UTC. ``advance`` hears each commit done.

    The base trees are read first; then each worker (the calling thread is the first)
    builds its share of the commits: hashing and compressing, which is nearly all the work,
    let go of the GIL. An exception in the calling thread (an interrupt) stops the others.
    """
    with _objects(repo) as objects:
        planned = [_plan(objects, c) for c in commits]
    trees = objects.trees
    workers = max(1, min(workers, len(planned) // 100))
    chunks = [planned[i::workers] for i in range(workers)]
    results: list[dict[str, str]] = [{} for _ in chunks]
    errors: list[BaseException] = []
    stopped = threading.Event()

    def work(n: int) -> None:
        try:
            results[n] = _write(directory, chunks[n], trees, stamp, advance, stopped)
        except BaseException as exc:
            errors.append(exc)
            stopped.set()

    others = [threading.Thread(target=work, args=(n,)) for n in range(1, workers)]
    for thread in others:
        thread.start()
    try:
        results[0] = _write(directory, chunks[0], trees, stamp, advance, stopped)
    except BaseException:
        stopped.set()
        raise
    finally:
        for thread in others:
            thread.join()
    if errors:
        raise errors[0]
    return {branch: oid for result in results for branch, oid in result.items()}


def _write(
    directory: Path,
    planned: list[_Planned],
    trees: dict[bytes, Tree],
    stamp: int,
    advance: Callable[[int], object],
    stopped: threading.Event,
) -> dict[str, str]:
    pack = PackWriter()
    ids: dict[str, str] = {}
    author = f"{AUTHOR} {stamp} +0000".encode()
    for p in planned:
        if stopped.is_set():
            return ids  # another worker failed: what this one would write is not needed
        content = p.commit.text.encode("utf-8")
        oid = object_id(_BLOB, content)
        pack.add(oid, _BLOB, content)
        mode, name = FILE_MODE, p.leaf
        for level in range(len(p.dirs), -1, -1):
            oid = _write_tree(pack, trees, p.trees[level], mode, name, oid)
            mode, name = TREE_MODE, p.dirs[level - 1] if level else b""
        commit = b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\n%s" % (
            oid.hex().encode(),
            p.commit.base.encode(),
            author,
            author,
            p.commit.message.encode("utf-8"),
        )
        commit_id = object_id(_COMMIT, commit)
        pack.add(commit_id, _COMMIT, commit)
        ids[p.commit.branch] = commit_id.hex()
        advance(1)
    pack.finish(directory)
    return ids


def _write_tree(
    pack: PackWriter,
    trees: dict[bytes, Tree],
    base: bytes | None,
    mode: bytes,
    name: bytes,
    child: bytes,
) -> bytes:
    """The tree ``base`` (None: a new, empty directory) with the entry ``name`` set, added
    to the pack as a delta of ``base``; its id."""
    if base is None:
        data = b"%s %s\x00%s" % (mode, name, child)
        oid = object_id(_TREE, data)
        pack.add(oid, _TREE, data)
        return oid
    tree = trees[base]
    pieces = tree.with_entry(mode, name, child)
    size = sum(p[1] if isinstance(p, tuple) else len(p) for p in pieces)
    oid = tree.id_of(pieces, size)
    if oid not in pack:
        pack.add(base, _TREE, tree.raw)
        pack.add_delta(oid, base, delta(len(tree.raw), pieces, size))
    return oid
