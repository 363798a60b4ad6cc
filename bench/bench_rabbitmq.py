"""The full real data set through RabbitMQ, with 1 and 2 mergers, against the embedded run.

    .venv/bin/python bench/bench_rabbitmq.py [--shared ../shared/data] [--mergers 1,2]

Unpacks the OEC snapshot into a git repository and warms its alias-index cache (not timed).
Then, each on a fresh copy of that repository:

- embedded: ``oec-sync run`` (no cap on PRs), wall time of the process;
- rabbitmq-N: the indexer, N mergers and the publisher as separate processes on a private
  topology prefix, started and ready before the clock starts; timed from ``oec-sync fetcher
  --once`` until the publisher's /runs says the run is complete (branches written).

Prints wall time, messages per second (every message a service consumed: the catalogues,
a planets.matched and a planet.outcomes per 50 planets, the run's bookkeeping) and the ratio to the
embedded run, the CPU seconds each service and the local broker used during the run (where
the time goes), and
checks that every wiring wrote the same branches and PR drafts.
Needs a broker at OEC_SYNC_AMQP_URL (default localhost guest/guest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.snapshot_repo import EU, NASA, git, unpack  # noqa: E402

OEC_SYNC = str(REPO / ".venv" / "bin" / "oec-sync")


def make_template(shared: Path, work: Path) -> Path:
    from common.gitrepo import head_commit
    from common.oec.index import load_index

    repo = unpack(shared, work / "template")
    load_index(repo, head_commit(repo))  # the cache every copy starts with
    return repo


def fresh_copy(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


def signature(repo: Path, outbox: Path) -> tuple[str, str]:
    refs = git(
        repo,
        "for-each-ref",
        "--format=%(refname) %(tree) %(parent) %(contents:subject)",
        "refs/heads/oec-sync/",
    )
    drafts = "".join(p.name + p.read_text() for p in sorted(outbox.glob("*")))
    return refs, drafts


def embedded(template: Path, shared: Path, work: Path) -> dict[str, Any]:
    repo = fresh_copy(template, work / "embedded")
    outbox = work / "embedded-outbox"
    report = work / "embedded.json"
    started = time.perf_counter()
    subprocess.run(
        [
            OEC_SYNC,
            "run",
            "--oec-repo",
            str(repo),
            "--nasa",
            str(shared / NASA),
            "--eu",
            str(shared / EU),
            "--max-prs",
            "0",
            "--outbox",
            str(outbox),
            "--report",
            str(report),
        ],
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    result = json.loads(report.read_text())
    return {"wall": wall, "report": result, "signature": signature(repo, outbox)}


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as response:
        return json.loads(response.read())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(condition: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def distributed(
    template: Path, shared: Path, work: Path, mergers: int, name: str
) -> dict[str, Any]:
    repo = fresh_copy(template, work / name)
    outbox = work / f"{name}-outbox"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "OEC_SYNC_BUS__PREFIX": prefix,
        "OEC_SYNC_OEC_REPO": str(repo),
        "OEC_SYNC_DATA_DIR": str(work / f"{name}-data"),
        "OEC_SYNC_OUTBOX": str(outbox),
        "OEC_SYNC_MAX_PRS": "0",
        "OEC_SYNC_STATUS_HOST": "127.0.0.1",
        "OEC_SYNC_LOG_LEVEL": "WARNING",
    }
    roles = ["indexer", *(["merger"] * mergers), "publisher"]
    processes: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    logs = work / f"{name}-logs"
    logs.mkdir()
    try:
        for i, role in enumerate(roles):
            port = free_port()
            log = (logs / f"{i}-{role}.log").open("wb")
            process = subprocess.Popen(
                [OEC_SYNC, role, "--port", str(port)], env=env, stdout=log, stderr=log
            )
            processes.append((role, port, process))
        for role, port, _ in processes:
            wait(lambda port=port: get(port, "/readyz")["ready"], 180, f"{role} to be ready")
        publisher_port = processes[-1][1]

        watched = [(role, process.pid) for role, _, process in processes]
        if (broker := broker_pid()) is not None:
            watched.append(("broker", broker))
        cpu_before = [cpu_seconds(pid) for _, pid in watched]
        started = time.perf_counter()
        fetched = subprocess.run(
            [OEC_SYNC, "fetcher", "--once", "--nasa", str(shared / NASA), "--eu", str(shared / EU)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        fetch_done = time.perf_counter() - started
        run_id = fetched.stdout.strip().splitlines()[-1]

        def complete() -> bool:
            runs = get(publisher_port, "/runs")
            return bool(runs) and runs[0]["run_id"] == run_id and runs[0]["state"] == "complete"

        wait(complete, 3600, "the run to complete", interval=0.1)
        wall = time.perf_counter() - started
        report = get(publisher_port, f"/runs/{run_id}")
        (summary,) = [r for r in get(publisher_port, "/runs") if r["run_id"] == run_id]
        handled = [get(port, "/status") for _, port, _ in processes]
        cpu = [
            (role, cpu_seconds(pid) - before)
            for (role, pid), before in zip(watched, cpu_before, strict=True)
        ]
        return {
            "cpu": cpu,
            "wall": wall,
            "fetch": fetch_done,
            # When the publisher took the run's last outcome: the end of the message flow.
            "flow": _seconds(summary["last_activity"]) - _seconds(summary["first_seen"]),
            "report": report,
            "signature": signature(repo, outbox),
            "consumed": sum(
                sum(run["handled"].values())
                for status in handled
                for run in status["recent_runs"]
                if run["run_id"] == run_id
            ),
            "per_merger": [
                sum(r["handled"].values()) for s in handled[1:-1] for r in s["recent_runs"]
            ],
        }
    finally:
        for _, _, process in processes:
            process.terminate()
        for _, _, process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        _delete_topology(prefix)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a live process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The local RabbitMQ node's Erlang VM, whose CPU the services compete with here."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"beam.smp" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def _seconds(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _delete_topology(prefix: str) -> None:
    from runtime.bus.rabbitmq import connection_parameters, delete, topology_for
    from runtime.config import Settings

    os.environ["OEC_SYNC_BUS__PREFIX"] = prefix
    settings = Settings()
    import pika

    with pika.BlockingConnection(
        connection_parameters(settings.amqp_url, settings.bus, "bench")
    ) as connection:
        delete(connection.channel(), topology_for(settings.bus))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--mergers", default="1,2", help="comma-separated merger counts, each a run (may repeat)"
    )
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    parser.add_argument(
        "--embedded-seconds",
        type=float,
        help="skip the embedded run and compare with this wall time (no identity check)",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-rabbitmq-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print("preparing the OEC repository and its index cache (not timed) ...", flush=True)
        template = make_template(args.shared, work)
        if args.embedded_seconds:
            base = {"wall": args.embedded_seconds, "signature": None}
        else:
            print("embedded run ...", flush=True)
            base = embedded(template, args.shared, work)
            planets = sum(c.get("records", 0) for c in base["report"]["catalogues"].values())
            print(
                f"embedded      {base['wall']:7.1f} s   {planets} planets, "
                f"{len(base['report']['systems'])} systems",
                flush=True,
            )
        for i, count in enumerate(int(n) for n in args.mergers.split(",")):
            # A count may repeat (2,1,2): this machine's speed drifts within minutes.
            result = distributed(template, args.shared, work, count, f"rabbitmq-{count}-{i}")
            same = base["signature"] is None or result["signature"] == base["signature"]
            rate = result["consumed"] / result["wall"]
            print(
                f"rabbitmq x{count}   {result['wall']:7.1f} s   "
                f"{result['consumed']} messages consumed, {rate:,.0f} msg/s, "
                f"{result['wall'] / base['wall']:.2f}x embedded "
                f"(fetch {result['fetch']:.1f} s, last outcome at {result['flow']:.1f} s; "
                f"per merger {result['per_merger']}); "
                f"branches and drafts {'identical' if same else 'DIFFERENT'} to embedded",
                flush=True,
            )
            used = ", ".join(f"{role} {seconds:.1f}" for role, seconds in result["cpu"])
            busy = sum(seconds for _, seconds in result["cpu"]) / result["wall"]
            print(
                f"    CPU seconds during the run: {used} ({busy:.1f} cores busy on average)",
                flush=True,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
