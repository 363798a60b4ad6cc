"""`oec-sync run --quality-html` and the report's "quality" key on the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from tests.gitutil import make_repo
from tests.paths import SAMPLE


def test_the_run_writes_the_quality_page_and_report_section(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    page, report = tmp_path / "quality.html", tmp_path / "report.json"
    args = ["run", "--oec-repo", str(repo), "--nasa", str(SAMPLE / "nasa.csv")]
    args += ["--eu", str(SAMPLE / "eu.csv"), "--outbox", str(tmp_path / "outbox")]
    args += ["--report", str(report), "--quality-html", str(page), "--max-prs", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    quality = json.loads(report.read_text(encoding="utf-8"))["quality"]
    assert [c["source"] for c in quality["catalogues"]] == ["nasa", "exoplanet.eu"]
    assert quality["catalogues"][0]["counts"]["rows"] > 50
    # BD+20 594: NASA's distance 179.461 against exoplanet.eu's 180.39 (see test_quality).
    assert any(
        d["file"] == "systems/BD+20 594.xml" and d["field"] == "distance"
        for d in quality["disagreements"]
    )
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert quality["run_id"] in html and "BD+20 594" in html
