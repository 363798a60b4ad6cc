"""Wall time of publishing 1,000 systems through GitHubSink, against local stand-ins.

    .venv/bin/python bench/bench_publish.py [--systems 1000] [--shared ../shared/data]

Unpacks real OEC system files from the snapshot into a bare "upstream" repository and a
bare "fork" cloned from it, and starts the fake GitHub server of the tests in its own
process, as GitHub is another machine (not timed).
Then makes the publisher's clone of the fork, as the first run in a data directory does
once (reported, not timed), and times the real code path: GitHubSink.publish() with no cap
— fork sync, fetch, planning, one fast-import, one push with leases, one POST per pull
request — and a second run with the same proposals, which must open, update and push
nothing. PyGithub's
pause between writes is off: against GitHub it is a deliberate 1 s per write.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.request import Request, urlopen

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pydantic import SecretStr  # noqa: E402

from services.publisher.github import GitHubSink  # noqa: E402
from services.publisher.pr_store import PrStore  # noqa: E402
from services.publisher.retry import make_retry  # noqa: E402
from testing.fakegithub import FakeGitHub  # noqa: E402
from testing.proposals import FORK, UPSTREAM, VALUE, proposal_for  # noqa: E402

GOAL_SECONDS = 10.0


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=OEC maintainer", "-c", "user.email=oec@localhost"]
    done = subprocess.run(
        ["git", "-C", str(cwd), *identity, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def unpack(snapshot: Path, work: Path, count: int) -> list[str]:
    """Every system file into ``work``; the first ``count`` with a value to change."""
    with tarfile.open(snapshot) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("systems/") and m.isfile()]
        tar.extractall(work, members=members, filter="data")
    chosen: list[str] = []
    for member in sorted(members, key=lambda m: m.name):
        text = (work / member.name).read_text(encoding="utf-8")
        if VALUE.search(text):
            chosen.append(member.name)
        if len(chosen) == count:
            break
    return chosen


def _cpu() -> float:
    """User + system seconds of this process and its finished children (git)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def serve(token: str, upstream: Path, fork: Path, ready: multiprocessing.Queue[str]) -> None:
    """The fake GitHub, in a process of its own."""
    with FakeGitHub(token) as github:
        github.add_repo(UPSTREAM, upstream)
        github.add_repo(FORK, fork)
        ready.put(github.url)
        threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", type=int, default=1000)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--tmp", type=Path, default=None, help="where the repositories go (e.g. /dev/shm)"
    )
    args = parser.parse_args()
    snapshot = args.shared / "oec-snapshot-2026-08-22.tar.gz"
    root = Path(tempfile.mkdtemp(prefix="bench-publish-", dir=args.tmp))
    try:
        work = root / "maintainer"
        work.mkdir()
        files = unpack(snapshot, work, args.systems)
        git(work, "init", "--quiet", "--initial-branch=master")
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", "OEC snapshot")
        upstream, fork = root / "upstream.git", root / "fork.git"
        git(root, "clone", "--quiet", "--bare", str(work), str(upstream))
        git(root, "clone", "--quiet", "--bare", str(upstream), str(fork))
        head = git(upstream, "rev-parse", "master").strip()
        texts = {f: (work / f).read_text(encoding="utf-8") for f in files}
        proposals = [proposal_for(f, texts[f], head) for f in files]
        token = "ghp_bench" + "0" * 31
        print(f"{len(proposals)} proposals from real OEC files; timing publish()")

        ready: multiprocessing.Queue[str] = multiprocessing.get_context("fork").Queue()
        server = multiprocessing.get_context("fork").Process(
            target=serve, args=(token, upstream, fork, ready), daemon=True
        )
        server.start()
        url = ready.get(timeout=30)

        def stats() -> dict[str, int]:
            request = Request(f"{url}/_fake/stats", headers={"Authorization": f"token {token}"})
            with urlopen(request) as answer:
                return json.load(answer)

        def sink_for(store: PrStore) -> GitHubSink:
            return GitHubSink(
                token=SecretStr(token),
                upstream=UPSTREAM,
                fork=FORK,
                clone_dir=root / "data" / "fork.git",
                store=store,
                api_url=url,
                retry=make_retry(),
                seconds_between_requests=0,
                seconds_between_writes=0,
            )

        def warm_up() -> float:
            """The publisher's clone of the fork is made once per data directory."""
            store = PrStore(root / "data" / "pulls.sqlite3")
            start = time.perf_counter()
            sink_for(store).plan([], 0)
            store.close()
            return time.perf_counter() - start

        def run() -> tuple[float, Counter[str]]:
            store = PrStore(root / "data" / "pulls.sqlite3")
            sink = sink_for(store)
            start, cpu = time.perf_counter(), _cpu()
            results = sink.publish(proposals, 0)
            elapsed = time.perf_counter() - start
            print(f"  (CPU of the publisher and its git processes: {_cpu() - cpu:.2f} s)")
            store.close()
            return elapsed, Counter(r.state.value for r in results)

        try:
            print(f"clone of the fork (once per data directory, not timed): {warm_up():.2f} s")
            first, states = run()
            branches = git(fork, "for-each-ref", "--count=100000", "refs/heads/oec-sync/")
            print(f"first run:  {first:6.2f} s  {dict(states)}")
            print(
                f"            {len(branches.splitlines())} branches on the fork, "
                f"{stats()['open']} open PRs"
            )
            writes = stats()["writes"]
            second, states = run()
            writes = stats()["writes"] - writes
            print(f"second run: {second:6.2f} s  {dict(states)}, {writes} API writes")
        finally:
            server.kill()
        verdict = "within" if first <= GOAL_SECONDS else "OVER"
        print(
            f"publishing {len(proposals)} systems: {first:.2f} s "
            f"({verdict} the {GOAL_SECONDS:.0f} s goal)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
