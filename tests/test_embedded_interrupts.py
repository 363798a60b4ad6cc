"""A real ``oec-sync run`` (uncapped, on the bundled sample) stopped with real signals.

Each run is a child process in its own session, as a shell runs a command in the
foreground: SIGINT goes to the whole group, as Ctrl-C does. ``OEC_SYNC_PAUSE_AT`` (read
once, in ``common.interrupts.checkpoint``) makes the run stop at a named stage and say so;
the test then signals it. After any interrupt the next run must finish with exactly the
branches and drafts of a run that was never interrupted, and leave no lock or temporary
pack behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitutil import git, make_repo
from tests.paths import SAMPLE

OEC_SYNC = Path(sys.executable).parent / "oec-sync"


def command(repo: Path, outbox: Path) -> list[str]:
    return [
        *(str(OEC_SYNC), "run", "--oec-repo", str(repo)),
        *("--nasa", str(SAMPLE / "nasa.csv"), "--eu", str(SAMPLE / "eu.csv")),
        *("--outbox", str(outbox), "--max-prs", "0"),
    ]


def run(repo: Path, outbox: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(repo, outbox), capture_output=True, text=True, timeout=120)


def start_paused(repo: Path, outbox: Path, stage: str) -> subprocess.Popen[str]:
    """A run that has stopped at ``stage`` and waits there for a signal."""
    env = {**os.environ, "OEC_SYNC_PAUSE_AT": stage}
    proc = subprocess.Popen(
        command(repo, outbox),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip() == f"paused at {stage}":
            return proc
    proc.wait()
    raise AssertionError(f"the run never reached {stage} (exit {proc.returncode})")


def interrupt(repo: Path, outbox: Path, stage: str, signum: int) -> tuple[int, str]:
    """Run, stop at ``stage``, send ``signum`` to the run's process group; exit, stderr."""
    proc = start_paused(repo, outbox, stage)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def branches(repo: Path) -> dict[str, str]:
    """Each oec-sync branch's parent, tree and message (commit ids carry the time)."""
    out = git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/oec-sync/")
    return {ref: git(repo, "show", "-s", "--format=%P %T%n%B", ref) for ref in out.split()}


def drafts(outbox: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outbox.iterdir())} if outbox.exists() else {}


def leftovers(repo: Path) -> list[str]:
    """Locks, temporary packs or objects, staging repositories: what a stop may leave."""
    patterns = ["**/*.lock", "objects/pack/tmp_*", "objects/**/tmp_obj_*", "oec-sync/staging"]
    return sorted(str(p) for pattern in patterns for p in (repo / ".git").glob(pattern))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample checkout before any run; every test copies it (same base commit)."""
    return make_repo(tmp_path_factory.mktemp("pristine") / "oec")


@pytest.fixture(scope="module")
def expected(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """Branches and drafts of a run that was never interrupted."""
    work = tmp_path_factory.mktemp("uninterrupted")
    repo = work / "oec"
    shutil.copytree(pristine, repo)
    done = run(repo, work / "outbox")
    assert done.returncode == 0, done.stderr
    assert len(branches(repo)) > 50
    return branches(repo), drafts(work / "outbox")


def copy(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "oec"
    shutil.copytree(pristine, repo)
    return repo, tmp_path / "outbox"


@pytest.mark.parametrize(
    ("stage", "signum"),
    [
        ("match", signal.SIGINT),  # merging the first planets
        ("branches", signal.SIGINT),  # fast-import half way through its stream
        ("drafts", signal.SIGINT),  # the first draft written beside its name
        ("refs", signal.SIGINT),  # every branch locked by the prepared transaction
        ("branches", signal.SIGTERM),
    ],
)
def test_an_interrupted_run_writes_nothing_and_the_next_run_writes_everything(
    pristine: Path, expected: tuple[dict, dict], tmp_path: Path, stage: str, signum: int
) -> None:
    repo, outbox = copy(pristine, tmp_path)

    code, err = interrupt(repo, outbox, stage, signum)

    assert code == 128 + signum
    assert err.strip().splitlines()[-1] == "interrupted; nothing was written"
    assert "Traceback" not in err
    assert branches(repo) == {}
    assert drafts(outbox) == {}
    assert leftovers(repo) == []

    again = run(repo, outbox)

    assert again.returncode == 0, again.stderr
    assert (branches(repo), drafts(outbox)) == expected
    assert leftovers(repo) == []


def test_what_a_killed_run_left_is_cleaned_by_the_next_and_said_in_one_line(
    pristine: Path, expected: tuple[dict, dict], tmp_path: Path
) -> None:
    repo, outbox = copy(pristine, tmp_path)
    # A run killed outright (no chance to clean up) while fast-import writes: its staging
    # repository stays, with fast-import's unfinished pack inside.
    proc = start_paused(repo, outbox, "branches")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The leftovers of older versions and of killed git commands, made by killing real git:
    # a ref transaction killed while it held its lock, fast-import killed mid-pack.
    branch = sorted(expected[0])[0]
    head = git(repo, "rev-parse", "HEAD").strip()
    held = subprocess.Popen(
        ["git", "-C", str(repo), "update-ref", "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert held.stdin is not None and held.stdout is not None
    held.stdin.write(f"start\nupdate {branch} {head} {'0' * 40}\nprepare\n")
    held.stdin.flush()
    assert held.stdout.readline() == "start: ok\n"
    assert held.stdout.readline() == "prepare: ok\n"
    held.kill()
    held.wait()
    killed_import = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert killed_import.stdin is not None
    killed_import.stdin.write(b"blob\ndata 5\nhello\n" * 200)
    killed_import.stdin.flush()
    wait_for(lambda: any((repo / ".git/objects/pack").glob("tmp_pack_*")))
    killed_import.kill()
    killed_import.wait()
    outbox.mkdir(exist_ok=True)
    (outbox / "11_Com.md.tmp").write_text("# half a dra", encoding="utf-8")
    assert len(leftovers(repo)) == 3  # the ref lock, the staging repo, the unfinished pack

    again = run(repo, outbox)

    assert again.returncode == 0, again.stderr
    said = [line for line in again.stderr.splitlines() if line.startswith("cleaned up")]
    assert len(said) == 1
    assert re.fullmatch(
        "cleaned up after an interrupted run: removed a staged write, "
        rf"1 stale ref lock \({re.escape(branch)}\.lock\), "
        r"1 temporary object file \([0-9.]+ [kM]B\), 1 temporary draft",
        said[0],
    ), said[0]
    assert (branches(repo), drafts(outbox)) == expected
    assert leftovers(repo) == []


def test_a_live_git_command_keeps_its_temporary_pack(pristine: Path, tmp_path: Path) -> None:
    """Only what no process holds is stale: a fast-import of someone else still running in
    the checkout keeps its pack and finishes."""
    repo, outbox = copy(pristine, tmp_path)
    other = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet", "--done"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert other.stdin is not None
    other.stdin.write(b"blob\nmark :1\ndata 5\nhello\n")
    other.stdin.flush()
    wait_for(lambda: any((repo / ".git/objects/pack").glob("tmp_pack_*")))

    done = run(repo, outbox)

    assert done.returncode == 0, done.stderr
    assert "cleaned up" not in done.stderr
    other.stdin.write(b"reset refs/heads/theirs\nfrom " + b"0" * 40 + b"\n\ndone\n")
    _, err = other.communicate(timeout=30)
    assert other.returncode == 0, err


def test_a_second_run_while_one_is_writing_stops_at_once(pristine: Path, tmp_path: Path) -> None:
    repo, outbox = copy(pristine, tmp_path)
    first = start_paused(repo, outbox, "drafts")
    try:
        second = run(repo, tmp_path / "outbox2")
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.communicate(timeout=60)

    assert second.returncode == 1
    assert "another oec-sync process" in second.stderr
    assert f"(pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    assert drafts(tmp_path / "outbox2") == {}


def test_a_git_failure_is_shown_in_gits_words_and_nothing_is_written(
    pristine: Path, tmp_path: Path
) -> None:
    repo, outbox = copy(pristine, tmp_path)
    # A branch named like the namespace: git cannot create refs/heads/oec-sync/<system>.
    git(repo, "branch", "oec-sync")

    done = run(repo, outbox)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("git update-ref: fatal:")
    assert "'refs/heads/oec-sync' exists; cannot create 'refs/heads/oec-sync/" in last
    assert branches(repo) == {}
    assert drafts(outbox) == {}
    assert leftovers(repo) == []
