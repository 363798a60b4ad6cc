"""Wall time and peak memory of the embedded run on the full real data set.

    .venv/bin/python bench/bench_embedded.py [--shared ../shared/data] [--keep DIR]

Unpacks the OEC snapshot into a fresh git repository (not timed), then times
``oec-sync run`` twice as a child process: the first run creates every branch (no cap),
the second must create nothing. Peak memory is the child's maximum resident set size.
Then times writing all the first run's branches again, alone, into a fresh copy of the
snapshot (``write_branches``: packs staged, moved in, one ref transaction), wall
and CPU seconds. Also prints what a maintainer would check: counts per catalogue, new
systems that share an alias with or lie within 10 arcsec of an existing system of
``systems/`` (a KOI file of ``systems_kepler/`` does not count: a newly confirmed Kepler
planet gets its own ``systems/`` file next to it, as the maintainer does),
lastupdate regressions, validity of every written file, and that every branch touches
exactly one file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.snapshot_repo import EU, NASA, SNAPSHOT, git, unpack  # noqa: E402
from common.gitrepo import BranchCommit, head_commit, read_files  # noqa: E402
from common.gitwrite import write_branches  # noqa: E402
from common.oec import tree, validate  # noqa: E402
from common.oec.index import AliasIndex, parse_dec, parse_ra  # noqa: E402
from common.rules import parse_lastupdate  # noqa: E402


def timed_run(repo: Path, shared: Path, work: Path, name: str) -> tuple[float, float, dict]:
    report = work / f"{name}.json"
    command = [
        str(REPO / ".venv/bin/oec-sync"),
        "run",
        "--oec-repo",
        str(repo),
        "--nasa",
        str(shared / NASA),
        "--eu",
        str(shared / EU),
        "--outbox",
        str(work / "outbox"),
        "--report",
        str(report),
        "--max-prs",
        "0",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_mib = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return seconds, peak_mib, json.loads(report.read_text(encoding="utf-8"))


def branch_commits(repo: Path, report: dict) -> list[BranchCommit]:
    """The commits of the run's branches, as the publisher handed them to write_branches."""
    systems = report["systems"]
    query = "".join(f"refs/heads/{s['branch']}:{s['file']}\n" for s in systems)
    texts = read_blobs_by_query(repo, query)
    out = git(repo, "for-each-ref", "--format=%(refname)%00%(contents)%00", "refs/heads/oec-sync/")
    fields = out.split("\0")
    messages = {fields[i].strip(): fields[i + 1] for i in range(0, len(fields) - 1, 2)}
    base = head_commit(repo)
    return [
        BranchCommit(s["branch"], base, s["file"], text, messages[f"refs/heads/{s['branch']}"])
        for s, text in zip(systems, texts, strict=True)
    ]


def read_blobs_by_query(repo: Path, query: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input=query.encode(),
        capture_output=True,
        check=True,
    ).stdout
    texts: list[str] = []
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        size = int(out[pos:end].split()[2])
        texts.append(out[end + 1 : end + 1 + size].decode("utf-8"))
        pos = end + 2 + size
    return texts


def timed_branch_write(
    shared: Path, work: Path, commits: list[BranchCommit]
) -> tuple[float, float]:
    """Wall and CPU seconds (this process and its git children) to write ``commits``."""
    repo = unpack(shared, work / "oec-write")
    for _ in range(600):  # let the `git gc --auto` that the commit may start finish first
        if not (repo / ".git" / "gc.pid").exists():
            break
        time.sleep(0.1)
    base = head_commit(repo)
    commits = [BranchCommit(c.branch, base, c.file, c.text, c.message) for c in commits]

    def cpu() -> float:
        usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(u.ru_utime + u.ru_stime for u in usage)

    cpu_before, start = cpu(), time.perf_counter()
    written = write_branches(repo, commits, workers=os.cpu_count() or 1)
    seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_before
    assert len(written) == len(commits)
    return seconds, cpu_seconds


def touched_files(repo: Path, base: str) -> dict[str, list[str]]:
    """The files each oec-sync branch changes against ``base``, from one ``git diff-tree``."""
    refs = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/oec-sync/")
    tips = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in refs.splitlines()}
    query = "".join(f"{tip} {base}\n" for tip in tips)
    out = subprocess.run(
        ["git", "-C", str(repo), "diff-tree", "--stdin", "-r", "--name-only", "-z"],
        input=query.encode(),
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    # Each answer is the tip's id, then the paths it changes, all "\0"-separated.
    touched: dict[str, list[str]] = {}
    current: list[str] = []
    for field in out.split("\0"):
        if field in tips:
            current = touched.setdefault(tips[field].removeprefix("refs/heads/"), [])
        elif field:
            current.append(field)
    return touched


def check(repo: Path, report: dict) -> dict[str, int]:
    """What a maintainer checks on the branches of the first run."""
    base = head_commit(repo)
    index = AliasIndex.load(repo / ".git/oec-sync/index.pickle")
    figures = dict.fromkeys(
        [
            "branches",
            "invalid new files",
            "edits adding a problem",
            "files per branch != 1",
            "lastupdate regressions",
            "new systems",
            "new sharing an alias",
            "new within 10 arcsec",
        ],
        0,
    )
    systems = report["systems"]
    touched = touched_files(repo, base)
    old_texts = read_files(repo, base, [s["file"] for s in systems])
    query = "".join(f"refs/heads/{s['branch']}:{s['file']}\n" for s in systems)
    new_blobs = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input=query.encode(),
        capture_output=True,
        check=True,
    ).stdout
    pos = 0
    for system in systems:
        end = new_blobs.index(b"\n", pos)
        size = int(new_blobs[pos:end].split()[2])
        new_text = new_blobs[end + 1 : end + 1 + size].decode("utf-8")
        pos = end + 2 + size
        branch, file = system["branch"], system["file"]
        figures["branches"] += 1
        figures["files per branch != 1"] += touched.get(branch) != [file]
        old_text = old_texts[file]
        if system["new"]:
            figures["new systems"] += 1
            figures["invalid new files"] += bool(validate.problems(new_text, file))
            root = tree.parse_system(new_text)
            names = tree.names_of(root) + [n for s in root.iter("star") for n in tree.names_of(s)]
            if any(e.file.startswith("systems/") for n in names for e in index.find_names(n)):
                figures["new sharing an alias"] += 1
                print(f"  shares an alias: {file} {names}")
            ra = parse_ra(root.findtext("rightascension"))
            dec = parse_dec(root.findtext("declination"))
            near = index.match_host_position(ra, dec, 10.0, ("systems",)) if ra and dec else []
            if near:
                figures["new within 10 arcsec"] += 1
                print(f"  within 10 arcsec: {file}")
            continue
        assert old_text is not None
        figures["edits adding a problem"] += bool(validate.new_problems(old_text, new_text, file))
        old_dates = {
            tree.path_of(p): parse_lastupdate(p.findtext("lastupdate"))
            for p in tree.parse_system(old_text).iter("planet")
        }
        for planet in tree.parse_system(new_text).iter("planet"):
            old = old_dates.get(tree.path_of(planet))
            new = parse_lastupdate(planet.findtext("lastupdate"))
            figures["lastupdate regressions"] += bool(old and new and new < old)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    if not (args.shared / SNAPSHOT).exists():
        sys.exit(f"full data not found at {args.shared}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="oec-sync-bench-"))
    os.makedirs(work, exist_ok=True)
    repo = unpack(args.shared, work / "oec")
    first_s, first_mib, first = timed_run(repo, args.shared, work, "first")
    branches = git(repo, "for-each-ref", "--count=100000", "refs/heads/oec-sync/").count("\n")
    second_s, second_mib, second = timed_run(repo, args.shared, work, "second")
    written_again = sum(s["state"] in {"opened", "updated"} for s in second["systems"])
    commits = branch_commits(repo, first)
    write_s, write_cpu = timed_branch_write(args.shared, work, commits)
    print(f"first run : {first_s:6.2f} s  peak {first_mib:6.0f} MiB  branches {branches}")
    print(f"second run: {second_s:6.2f} s  peak {second_mib:6.0f} MiB  written {written_again}")
    print(f"branch write alone: {write_s:6.2f} s  cpu {write_cpu:6.2f} s  branches {len(commits)}")
    for source, counts in first["catalogues"].items():
        shown = {k: v for k, v in counts.items() if isinstance(v, int)}
        print(f"{source:13}: {shown}")
    print(f"refused systems: {len(first['refused'])}")
    for key, value in check(repo, first).items():
        print(f"{key:24}: {value}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
