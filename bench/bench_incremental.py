"""The daily cases of an embedded run on the full real data, each against the floor.

    .venv/bin/python bench/bench_incremental.py [--shared ../shared/data] [--keep DIR]
                                                [--repeat N]

The floor is measured in this process: lxml parses every system file of the snapshot and
pandas reads both catalogues. Each case runs ``oec-sync run`` as a child process (wall
seconds, CPU seconds, peak resident memory of the largest process) on a checkout unpacked
beforehand (not timed):

    cold          uncapped, nothing remembered: every branch written
    unchanged     the same run again
    1 % rows      again, after one value changed in 1 % of the rows of each catalogue
                  (downloaded to the same path, as the fetcher downloads the same URL)
    HEAD moved    again, after one upstream commit touching 10 systems that have branches
    capped cold   ``--max-prs 20`` on a fresh checkout, nothing remembered

With ``--reference DIR`` (a checkout of the code the issue was measured on, a8c95b3, with
its own venv: ``git worktree add DIR a8c95b3 && DIR/scripts/setup.sh``), every round
also runs that code cold and again, beside the cases: its seconds now against the issue's
(24.6 s and 15.7 s) say how fast the machine is this hour, and each goal is shown at that
speed as well (the goals are "on this machine"; the same code's cold run took 17 s one day
and 31 s another).

Each incremental case also counts the branches it moved. After the last one, the same
inputs are run with ``--full`` in a copy of the checkout taken just before it, and the
branches (tree, parent, message) and drafts of both are compared: they must be equal.
The memory of the run with its children together (PSS) is sampled in two more runs of
each round, cold and unchanged, not in the timed ones: sampling slows a run down.
With ``--repeat N`` every case runs N times, each round on fresh copies, and the table shows
medians and the range of wall times: a cold run on a busy disk varies by seconds.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.memory import PeakTreeMemory  # noqa: E402
from bench.snapshot_repo import EU, NASA, git, unpack  # noqa: E402

OEC_SYNC = str(REPO / ".venv/bin/oec-sync")


def floor(repo: Path, nasa: Path, eu: Path) -> float:
    """Seconds to parse every system file with lxml and read both catalogues with pandas."""
    files = [p for folder in ("systems", "systems_kepler") for p in (repo / folder).glob("*.xml")]
    start = time.perf_counter()
    for path in files:
        etree.parse(str(path))
    for path in (nasa, eu):
        pd.read_csv(path, comment="#", low_memory=False)
    return time.perf_counter() - start


def timed(
    repo: Path,
    outbox: Path,
    downloads: Path,
    *extra: str,
    program: str = OEC_SYNC,
    sample_memory: bool = False,
) -> tuple[float, float, float, float | None]:
    """Wall seconds, CPU seconds and the largest process's peak resident MiB of one
    ``oec-sync run``; with ``sample_memory``, also the peak MiB of the run with its children
    together (summed PSS, bench/memory.py), else None.

    Sampling reads every process's page tables ten times a second, which takes the run's
    memory lock and a core's share: it made a cold run 0.9 s slower on average (13
    alternating pairs, 2 cores), so the timed runs are not sampled; the memory is sampled
    in runs of its own (:func:`memory_runs`)."""
    command = [program, "run", "--oec-repo", str(repo), "--outbox", str(outbox)]
    command += ["--nasa", str(downloads / "nasa.csv"), "--eu", str(downloads / "eu.csv")]
    command += ["--max-prs", "0", *extra] if "--max-prs" not in extra else list(extra)
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = PeakTreeMemory(child.pid) if sample_memory else None
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    together = memory.stop() if memory is not None else None
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    if child.returncode != 0:
        raise SystemExit(f"oec-sync run failed:\n{child.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, together


def branches(repo: Path) -> dict[str, str]:
    """Each oec-sync branch: tree, parent and message — what a reviewer sees of it."""
    out = git(
        repo,
        "for-each-ref",
        "--format=%(refname:short)%00%(tree) %(parent)%00%(contents)%00",
        "refs/heads/oec-sync",
    )
    fields = out.split("\0")
    return {
        fields[i].strip(): fields[i + 1] + "\n" + fields[i + 2]
        for i in range(0, len(fields) - 3, 3)
    }


def moved(before: dict[str, str], after: dict[str, str]) -> int:
    return sum(before.get(branch) != state for branch, state in after.items())


def drafts(outbox: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(outbox.glob("*"))}


def edit_rows(path: Path, column: str, share: float) -> int:
    """Change ``column`` in ``share`` of the rows that have it, in place; how many."""
    with open(path, newline="", encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    comments = [line for line in lines if line.startswith("#")]
    table = list(csv.reader(line for line in lines if not line.startswith("#")))
    at = table[0].index(column)
    rows = [row for row in table[1:] if row[at]]
    step = max(1, round(1 / share))
    edited = 0
    for row in rows[::step]:
        row[at] = f"{float(row[at]) * 1.001:.6g}"
        edited += 1
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.writelines(comments)
        csv.writer(f, lineterminator="\n").writerows(table)
    return edited


def move_head(repo: Path, count: int) -> list[str]:
    """One upstream commit touching ``count`` systems that have branches (a value each)."""
    touched: list[str] = []
    branched = set(branches(repo))
    for path in sorted((repo / "systems").glob("*.xml")):
        if len(touched) == count:
            break
        if f"oec-sync/{path.stem.replace(' ', '_')}" not in branched:
            continue
        text = path.read_text("utf-8")
        magnitude = re.search(r"<magV>([0-9.]+)</magV>", text)
        if magnitude is None:
            continue
        corrected = f"<magV>{float(magnitude[1]) + 0.01:.2f}</magV>"
        path.write_text(text.replace(magnitude[0], corrected, 1), "utf-8")
        touched.append(path.name)
    git(repo, "commit", "--quiet", "-am", f"maintainer: {count} systems")
    return touched


Row = tuple[str, float, float, float, float | None, str]


# The issue's own measurements of the code it was written against (reference runs).
ISSUE_COLD_S, ISSUE_AGAIN_S = 24.6, 15.7
GOALS_S = {
    "cold, uncapped": 10.0,
    "again, nothing changed": 2.0,
    "again, 1 % of rows changed": 3.0,
    "again, HEAD moved (10 systems)": 3.0,
    "daily, capped at 20, cold": 8.0,
}


def fresh_downloads(shared: Path, folder: Path) -> Path:
    """``folder`` holding both real downloads as the runs read them (nasa.csv, eu.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared / NASA, folder / "nasa.csv")
    shutil.copy(shared / EU, folder / "eu.csv")
    return folder


def reference_runs(reference: Path, base: Path, work: Path, downloads: Path) -> tuple[float, float]:
    """The reference code's cold run and the same run again, wall seconds."""
    repo = work / "reference" / "oec"
    shutil.copytree(base, repo, symlinks=True)
    program = str(reference / ".venv" / "bin" / "oec-sync")
    cold, *_ = timed(repo, repo.parent / "outbox", downloads, program=program)
    again, *_ = timed(repo, repo.parent / "outbox", downloads, program=program)
    print(f"  the issue's code: cold {cold:.1f} s, again {again:.1f} s", file=sys.stderr)
    return cold, again


def one_round(
    shared: Path, base: Path, work: Path, reference: Path | None = None
) -> tuple[list[Row], bool, bool, float, tuple[float, float] | None]:
    """Every case once, in ``work``: the rows, whether ``--full`` gave the same branches and
    drafts as the incremental run, the ``--full`` run's seconds, and the reference code's
    cold and again seconds (with ``reference``)."""
    downloads = fresh_downloads(shared, work / "downloads")
    rows: list[Row] = []
    measured = reference_runs(reference, base, work, downloads) if reference else None

    def case(name: str, repo: Path, note: str, *extra: str) -> None:
        before = branches(repo)
        seconds, cpu, peak, together = timed(repo, repo.parent / "outbox", downloads, *extra)
        note = f"{moved(before, branches(repo))} moved; {note}"
        rows.append((name, seconds, cpu, peak, together, note))
        print(f"  {name}: {seconds:.1f} s", file=sys.stderr)

    daily = work / "daily" / "oec"
    shutil.copytree(base, daily, symlinks=True)
    case("cold, uncapped", daily, "all branches")
    case("again, nothing changed", daily, "")
    nasa_rows = edit_rows(downloads / "nasa.csv", "pl_orbper", 0.01)
    eu_rows = edit_rows(downloads / "eu.csv", "orbital_period", 0.01)
    case("again, 1 % of rows changed", daily, f"{nasa_rows} NASA + {eu_rows} eu rows edited")
    touched = move_head(daily, 10)
    shutil.copytree(daily.parent, work / "full", symlinks=True)
    case("again, HEAD moved (10 systems)", daily, f"{len(touched)} files in the commit")
    capped = work / "capped" / "oec"
    shutil.copytree(base, capped, symlinks=True)
    case("daily, capped at 20, cold", capped, "", "--max-prs", "20")
    memory_runs(base, work / "memory", shared, rows)

    full = work / "full" / "oec"
    seconds, *_ = timed(full, full.parent / "outbox", downloads, "--full")
    same_branches = branches(full) == branches(daily)
    same_drafts = drafts(full.parent / "outbox") == drafts(daily.parent / "outbox")
    return rows, same_branches, same_drafts, seconds, measured


def memory_runs(base: Path, work: Path, shared: Path, rows: list[Row]) -> None:
    """The cold and the unchanged case again on their own copies, memory sampled: their
    rows take these runs' PSS (the other cases' stays unknown)."""
    downloads = fresh_downloads(shared, work / "downloads")  # one_round's were edited
    repo = work / "oec"
    shutil.copytree(base, repo, symlinks=True)
    for i in (0, 1):  # "cold, uncapped" then "again, nothing changed", as in one_round
        *_, together = timed(repo, work / "outbox", downloads, sample_memory=True)
        name, seconds, cpu, peak, _, note = rows[i]
        rows[i] = (name, seconds, cpu, peak, together, note)
        print(f"  {name}, memory sampled: {together:.0f} MiB", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every case; the table shows medians"
    )
    parser.add_argument(
        "--reference", type=Path, help="a checkout of a8c95b3 with its venv (see above)"
    )
    args = parser.parse_args()
    shared = args.shared.resolve()
    if not (shared / NASA).exists():
        raise SystemExit(f"no real data at {shared}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="oec-incremental-"))
    work.mkdir(parents=True, exist_ok=True)
    # The venv as the README's commands leave it (our modules compiled: where
    # PYTHONDONTWRITEBYTECODE is set, every run would compile them again).
    subprocess.run([str(REPO / "scripts" / "setup.sh")], check=True, stdout=subprocess.DEVNULL)
    base = unpack(shared, work / "base")
    floor_s = floor(base, shared / NASA, shared / EU)
    rounds: list[list[Row]] = []
    references: list[tuple[float, float]] = []
    for k in range(args.repeat):
        print(f"round {k + 1} of {args.repeat}", file=sys.stderr)
        rows, same_branches, same_drafts, seconds, measured = one_round(
            shared, base, work / f"round{k}", args.reference
        )
        rounds.append(rows)
        references += [measured] if measured else []
        if not (same_branches and same_drafts):
            raise SystemExit("incremental and --full runs differ")

    print(f"\nfloor (lxml parse of all system files + pandas read of both): {floor_s:.2f} s")
    speed = 0.0
    if references:
        cold_now = statistics.median(r[0] for r in references)
        again_now = statistics.median(r[1] for r in references)
        speed = statistics.mean([cold_now / ISSUE_COLD_S, again_now / ISSUE_AGAIN_S])
        print(
            f"the issue's code here this hour: cold {cold_now:.1f} s, again {again_now:.1f} s "
            f"(issue: {ISSUE_COLD_S} s, {ISSUE_AGAIN_S} s): this hour the machine takes "
            f"{cold_now / ISSUE_COLD_S:.2f}× / {again_now / ISSUE_AGAIN_S:.2f}× as long; "
            f"goals scaled by the mean, {speed:.2f}×"
        )
    spread = " (median; min–max)" if args.repeat > 1 else ""
    scaled = " goal at this hour's speed |" if speed else ""
    print(
        f"\n| case | wall s{spread} | × floor | CPU s | peak MiB, largest process | "
        f"peak MiB allocated, with its children (PSS, sampled runs) | branches |{scaled}"
    )
    print("|---|---|---|---|---|---|---|" + ("---|" if speed else ""))
    for i, (name, *_, note) in enumerate(rounds[0]):
        walls = [r[i][1] for r in rounds]
        wall, cpu_s, mib = (statistics.median(r[i][n] for r in rounds) for n in (1, 2, 3))
        sampled = [pss for r in rounds if (pss := r[i][4]) is not None]
        pss = f"{statistics.median(sampled):.0f}" if sampled else "–"
        shown = f"{wall:.1f}" + (f" ({min(walls):.1f}–{max(walls):.1f})" if len(walls) > 1 else "")
        goal = f" ≤ {GOALS_S[name] * speed:.1f} s |" if speed else ""
        print(
            f"| {name} | {shown} | {wall / floor_s:.0f}× | {cpu_s:.1f} | {mib:.0f} | {pss} "
            f"| {note} |{goal}"
        )
    written = len(branches(work / f"round{args.repeat - 1}" / "full" / "oec"))
    print(
        f"\n--full on the HEAD-moved inputs: {seconds:.1f} s; branches and drafts equal to the "
        f"incremental run's in every round ({written} branches)"
    )
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
