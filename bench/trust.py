"""How many proposed updates make OEC worse, by kind, on the full real data.

    .venv/bin/python bench/trust.py [--shared ../shared/data] [--keep DIR]
    .venv/bin/python bench/trust.py --report REPORT.json --oec-repo DIR [--nasa F] [--eu F]

Without ``--report`` it unpacks the OEC snapshot into a fresh repository and runs
``oec-sync run`` uncapped on both full catalogues first. Then it reads the run's report and
both catalogues and counts the *updates* (an OEC value replaced) that a maintainer would
reject unread. The definitions are the issue's, independent of the rules that made the run:

- lose:    OEC's value has an uncertainty, the new one has none;
- against: the other catalogue is within 1 % of OEC's value, and the update moves more than
           1 % away with a value whose relative uncertainty is not smaller than OEC's;
- angle:   an angle (periastron ...) that is the same modulo 360 within the combined
           uncertainty (or within 1° when there is none), but not without the wrap;
- jump:    a planet's period or semimajor axis moved by more than 20 %.

It also prints the updates kept, the conflicts the run listed (the ten largest), and twenty
random updates with the other catalogue's value beside them, to be read.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.snapshot_repo import EU, NASA, SNAPSHOT, unpack  # noqa: E402
from common import matching  # noqa: E402
from common.catalogues import read_catalogue_file  # noqa: E402
from common.matching import MatchKind  # noqa: E402
from common.numbers import parse_number  # noqa: E402
from common.oec.index import AliasIndex  # noqa: E402
from common.records import PlanetRecord, Source  # noqa: E402

ANGLES = frozenset({"periastron", "longitude", "ascendingnode", "meananomaly"})
IDENTITY = frozenset({"period", "semimajoraxis"})
AGREE = 0.01  # "within 1 %"
JUMP = 0.20

Fields = dict[str, str]


def number(fields: Fields | None) -> float | None:
    return parse_number(fields.get("value")) if fields else None


def sigma(fields: Fields | None) -> float | None:
    if not fields:
        return None
    plus, minus = parse_number(fields.get("errorplus")), parse_number(fields.get("errorminus"))
    return None if plus is None or minus is None else (plus + minus) / 2


def relative_sigma(fields: Fields | None) -> float:
    value, error = number(fields), sigma(fields)
    if value is None or error is None or value == 0:
        return math.inf
    return error / abs(value)


def wrapped(a: float, b: float) -> float:
    """|a - b| on the circle, degrees."""
    d = (b - a) % 360.0
    return min(d, 360.0 - d)


def part_of(path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    return last.split("[", 1)[0]


class OtherValues:
    """Every catalogue's values for every OEC object, found by matching the rows again."""

    def __init__(self, repo: Path, commit: str, catalogues: dict[Source, Path]) -> None:
        index = AliasIndex.build(repo, commit)
        # (source, file) -> [(planet path or host path, record, matched kind)]
        self.by_file: dict[tuple[Source, str], list[tuple[str, PlanetRecord]]] = defaultdict(list)
        for source, path in catalogues.items():
            for record in read_catalogue_file(path).records:
                match = matching.match(index, record)
                if match.kind in (MatchKind.PLANET, MatchKind.HOST) and match.file and match.path:
                    self.by_file[(source, match.file)].append((match.path, record))

    def values(self, source: Source, file: str, path: str, field: str) -> list[Fields]:
        """What ``source`` says of ``field`` of the object at ``path`` in ``file``."""
        part = part_of(path)
        out: list[Fields] = []
        for matched, record in self.by_file.get((source, file), []):
            if part == "planet":
                value = record.planet.get(field) if matched == path else None
            elif part == "system":
                value = record.system.get(field)
            else:  # a star: rows of its planets, or rows whose new planet it hosts
                under = matched == path or matched.startswith(path + "/")
                value = record.star.get(field) if under else None
            if value is not None and value.value is not None:
                out.append(value.fields())
        return out


def classify(change: dict[str, Any], others: list[Fields]) -> list[str]:
    """The kinds of harm an update does; empty when a maintainer would take it."""
    old, new = change["old_value"], change["new_value"]
    a, b = number(old), number(new)
    kinds: list[str] = []
    if sigma(old) is not None and b is not None and sigma(new) is None:
        kinds.append("lose")
    if a is None or b is None:
        return kinds
    field = change["field"]
    moved = abs(b - a) / abs(a) if a else (0.0 if b == a else math.inf)
    agreeing = [o for o in others if (c := number(o)) is not None and abs(c - a) <= AGREE * abs(a)]
    if agreeing and moved > AGREE and relative_sigma(new) >= relative_sigma(old):
        kinds.append("against")
    if field in ANGLES:
        combined = math.hypot(sigma(old) or 0.0, sigma(new) or 0.0) or 1.0
        if abs(b - a) > combined and wrapped(a, b) <= combined:
            kinds.append("angle")
    if field in IDENTITY and part_of(change["path"]) == "planet" and moved > JUMP:
        kinds.append("jump")
    return kinds


def run_pipeline(shared: Path, work: Path) -> tuple[Path, Path]:
    repo = unpack(shared, work / "oec")
    report = work / "report.json"
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
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return repo, report


def show(fields: Fields | None) -> str:
    if not fields:
        return "—"
    text = fields.get("value") or f"limits {fields.get('lowerlimit')}..{fields.get('upperlimit')}"
    if "errorplus" in fields:
        text += f" +{fields['errorplus']}/-{fields.get('errorminus')}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--report", type=Path, help="analyse this report instead of running")
    parser.add_argument("--oec-repo", type=Path, help="the checkout the report's run used")
    parser.add_argument("--nasa", type=Path, help="NASA file of that run (default: the full one)")
    parser.add_argument("--eu", type=Path, help="exoplanet.eu file of that run")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per kind")
    args = parser.parse_args()
    catalogues = {
        Source.NASA: args.nasa or args.shared / NASA,
        Source.EU: args.eu or args.shared / EU,
    }
    if args.report:
        if not args.oec_repo:
            sys.exit("--report needs --oec-repo")
        repo, report_path = args.oec_repo, args.report
    else:
        if not (args.shared / SNAPSHOT).exists():
            sys.exit(f"full data not found at {args.shared}")
        work = args.keep or Path(tempfile.mkdtemp(prefix="oec-sync-trust-"))
        work.mkdir(parents=True, exist_ok=True)
        repo, report_path = run_pipeline(args.shared, work)
        print(f"work folder: {work}")
    report = json.loads(report_path.read_text("utf-8"))
    commit = next(c["oec_commit"] for c in report["catalogues"].values() if "oec_commit" in c)
    others = OtherValues(repo, commit, catalogues)

    harm: dict[str, list[str]] = defaultdict(list)
    kept: list[tuple[dict[str, Any], dict[str, Any], list[Fields]]] = []
    fields = Counter()
    for system in report["systems"]:
        for change in system["changes"]:
            if change["kind"] != "updated" or change["field"] == "lastupdate":
                continue
            source = Source(change["source"])
            other = next(s for s in Source if s is not source)
            values = others.values(other, system["file"], change["path"], change["field"])
            kinds = classify(change, values)
            line = (
                f"{change['object']} {change['field']}: {show(change['old_value'])} -> "
                f"{show(change['new_value'])} ({source.value}); {other.value}: "
                + (", ".join(show(v) for v in values[:3]) or "—")
            )
            for kind in kinds:
                harm[kind].append(line)
            kept.append((system, change, values))
            fields[change["field"]] += 1

    print(f"updates kept: {len(kept)}  (by field: {dict(fields.most_common(8))})")
    for kind in ("lose", "against", "angle", "jump"):
        print(f"{kind:8}: {len(harm[kind])}")
        for line in harm[kind][: args.examples]:
            print(f"    {line}")
    conflicts = report.get("conflicts", [])
    reasons = Counter(c["reason"] for c in conflicts)
    print(f"conflicts listed: {len(conflicts)}  (by reason: {dict(reasons.most_common())})")
    fields = Counter(c["field"] for c in conflicts)
    print(f"    by field: {dict(fields.most_common(8))}")
    sizes = Counter(
        "<1%" if c["size"] < 0.01 else "1-10%" if c["size"] < 0.1 else ">=10%" for c in conflicts
    )
    print(f"    by size: {dict(sizes)}")
    for conflict in conflicts[:10]:
        values = "; ".join(f"{v['source']} {v['shown']}" for v in conflict["values"])
        print(f"    {conflict['object']} {conflict['field']} [{conflict['reason']}]: {values}")
    print("twenty random updates:")
    for system, change, values in random.Random(2026).sample(kept, min(20, len(kept))):
        print(
            f"    {system['file']}: {change['object']} {change['field']} "
            f"{show(change['old_value'])} -> {show(change['new_value'])} ({change['source']}, "
            f"{change['source_date']}); other: {', '.join(show(v) for v in values[:2]) or '—'}"
        )


if __name__ == "__main__":
    main()
