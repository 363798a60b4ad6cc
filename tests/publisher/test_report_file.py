"""The run's JSON report file: written as it is encoded, yet never left half-written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.publisher import reports
from services.publisher.handler import RunState


def test_a_report_that_fails_halfway_leaves_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.json"
    reports.write_report(RunState(run_id="yesterday"), path)
    before = path.read_text(encoding="utf-8")
    assert json.loads(before)["run_id"] == "yesterday"

    def breaking(state: RunState, dry_run: bool = False) -> dict[str, Any]:
        # Encodable for thousands of lines, then not: the file has been written to by then.
        systems = [{"file": f"{i}.xml"} for i in range(5000)]
        return {"run_id": state.run_id, "systems": systems, "last": object()}

    monkeypatch.setattr(reports, "report", breaking)
    with pytest.raises(TypeError):
        reports.write_report(RunState(run_id="today"), path)

    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
