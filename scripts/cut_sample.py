"""Cut the bundled real sample (tests/fixtures/sample) from the full data in ../shared/data.

Keeps every byte of what it copies: whole OEC system files, and whole catalogue lines
(comment block and header included) for the hosts it picked. Run once; the output is
committed so the sample run and the tests need nothing outside the repo.

    python scripts/cut_sample.py ../shared/data tests/fixtures/sample
"""

from __future__ import annotations

import csv
import io
import sys
import tarfile
from pathlib import Path

NASA = "PSCompPars_2024-10-15_webUI_defaultcols.csv"
EU = "exoplanet.eu_catalog_2025-05_filtered.csv"
SNAPSHOT = "oec-snapshot-2026-08-22.tar.gz"
HOSTS_IN_OEC = 60  # hosts whose file stem equals NASA's hostname, taken every Nth
HOSTS_NOT_IN_OEC = 6
EXTRA_FILES = ["systems/Kepler-11.xml", "systems/Alpha Centauri.xml", "systems/HD 41004.xml"]


def main(data: Path, out: Path) -> None:
    with tarfile.open(data / SNAPSHOT) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        stems = {Path(n).stem: n for n in members if n.startswith("systems/")}
        nasa_lines = (data / NASA).read_text(encoding="utf-8").splitlines(keepends=True)
        comments = [line for line in nasa_lines if line.startswith("#")]
        body = [line for line in nasa_lines if not line.startswith("#")]
        header, rows = body[0], body[1:]
        hosts = sorted({next(csv.reader([r]))[1] for r in rows})
        in_oec = [h for h in hosts if h in stems][:: max(1, len(hosts) // 400)][:HOSTS_IN_OEC]
        not_in = [h for h in hosts if h not in stems and h.startswith("TOI-")][:HOSTS_NOT_IN_OEC]
        chosen = set(in_oec) | set(not_in) | {"Kepler-11", "alf Cen"}
        keep = [r for r in rows if next(csv.reader([r]))[1] in chosen]
        out.mkdir(parents=True, exist_ok=True)
        (out / "nasa.csv").write_text("".join([*comments, header, *keep]), encoding="utf-8")

        eu_raw = (data / EU).read_bytes().decode("utf-8")
        eu_lines = eu_raw.splitlines(keepends=True)
        reader = csv.reader(io.StringIO(eu_raw))
        eu_header = next(reader)
        star = eu_header.index("star_name")
        eu_keep = [eu_lines[0]]
        # Records can span lines only inside quotes; this file has none, so line == record.
        for line in eu_lines[1:]:
            fields = next(csv.reader([line]))
            if len(fields) > star and fields[star] in chosen:
                eu_keep.append(line)
        (out / "eu.csv").write_text("".join(eu_keep), encoding="utf-8")

        files = [stems[h] for h in in_oec] + EXTRA_FILES
        for name in ["template.xml", *files]:
            target = out / "oec" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = tar.extractfile(members[name])
            assert extracted is not None
            target.write_bytes(extracted.read())
    print(f"{len(files)} OEC files, {len(keep)} NASA rows, {len(eu_keep) - 1} exoplanet.eu rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
