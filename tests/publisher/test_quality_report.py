"""The quality report in the publisher's status API (JSON and HTML) for a run stored in the
run store, and the page as headless Chromium renders it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.gitrepo import head_commit
from common.matching import MatchKind
from common.messages import CatalogueCounts, Message, RunPlanned, RunStarted, SystemChanged
from common.proposals import Proposal
from common.records import RejectedRow, Source
from services.publisher.durable import DurablePublisher
from services.publisher.handler import GitTexts, PublisherHandler
from services.publisher.main import add_routes
from services.publisher.model import Published
from services.publisher.runstore import RunStore
from tests.gitutil import make_repo
from tests.qualityutil import patch, record

RUN = "20260822-0a1b2c3d"
CHROMIUM = Path("/usr/bin/chromium")
# Rows of the samples that both catalogues have, with disagreements between them.
PLANETS = {"BD+20 594 b": "BD+20 594 b", "EPIC 211822797 b": "K2-103 b", "GJ 1151 c": "GJ 1151 c"}


class NoSink:
    """Publishes nothing: the quality report is about the run's inputs."""

    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: object = None
    ) -> list[Published]:
        return []


def run_messages(commit: str) -> list[Message]:
    """A run as the publisher receives it: real patches of real sample rows."""
    rejected = RejectedRow(file="eu.csv", row=66, column="mass", reason="not a number: 'n/a'")
    messages: list[Message] = [RunStarted(run_id=RUN, catalogues=[Source.NASA, Source.EU])]
    for source, names, name in (
        (Source.NASA, list(PLANETS), "nasa.csv"),
        (Source.EU, list(PLANETS.values()), "eu.csv"),
    ):
        messages.append(
            RunPlanned(
                run_id=RUN,
                source=source,
                catalogue=name,
                commit=commit,
                planets=len(names),
                counts=CatalogueCounts(
                    rows=len(names) + 2, records=len(names) + 1, matched=len(names), ambiguous=1
                ),
                rejected=[rejected] if source is Source.EU else [],
                ambiguous=["Kepler-11 b"],
            )
        )
        for planet in names:
            row = record(name, planet)
            messages.append(
                SystemChanged(
                    run_id=RUN,
                    source=source,
                    row=row.row,
                    planet=planet,
                    match_kind=MatchKind.PLANET,
                    patch=patch(row, commit),
                )
            )
    return messages


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    repo = make_repo(tmp_path / "oec")
    commit = head_commit(repo)
    handler = PublisherHandler(NoSink(), GitTexts(repo), max_prs=0)  # type: ignore[arg-type]
    store = RunStore(tmp_path / "publisher.sqlite3")
    publisher = DurablePublisher(handler, store, run_timeout=3600)
    for message in run_messages(commit):
        publisher(message)
    assert publisher.finish_ready(lambda messages: None) == 1
    # A fresh publisher on the same store: the report comes from the stored inputs.
    restarted = DurablePublisher(
        PublisherHandler(NoSink(), GitTexts(repo), max_prs=0),  # type: ignore[arg-type]
        RunStore(tmp_path / "publisher.sqlite3"),
        run_timeout=3600,
    )
    app = FastAPI()
    add_routes(app, restarted)
    return TestClient(app)


def test_the_quality_json_has_counts_rows_and_disagreements(client: TestClient) -> None:
    response = client.get(f"/runs/{RUN}/quality")
    assert response.status_code == 200
    body = response.json()
    nasa, eu = body["catalogues"]
    assert (nasa["source"], eu["source"]) == ("nasa", "exoplanet.eu")
    assert nasa["counts"]["rows"] == 5 and nasa["counts"]["changed"] == 3
    assert eu["rejected"] == [
        {"file": "eu.csv", "row": 66, "column": "mass", "reason": "not a number: 'n/a'"}
    ]
    assert nasa["ambiguous"] == ["Kepler-11 b"]
    found = {(d["file"], d["path"], d["field"]): d for d in body["disagreements"]}
    distance = found[("systems/BD+20 594.xml", "/system", "distance")]
    assert (distance["nasa"]["new"]["value"], distance["eu"]["new"]["value"]) == (
        "179.461",
        "180.39",
    )
    assert distance["winner"] == "nasa"
    assert ("systems/EPIC 211822797.xml", "/system/star", "temperature") in found
    assert not any(file == "systems/GJ 1151.xml" for file, _, _ in found)
    assert body["both_proposed"] > len(found)
    temperature = found[("systems/BD+20 594.xml", "/system/star/planet", "temperature")]
    assert temperature["winner"] is None  # the catalogues disagree: a conflict
    conflicts = {(c["object"], c["field"]): c for c in body["conflicts"]}
    assert conflicts[("BD+20 594 b", "temperature")]["reason"] == "the catalogues disagree"
    # GJ 1151 c: OEC's 2.018 d planet, 389.7 d in both catalogues: another object?
    period = conflicts[("GJ 1151 c", "period")]
    assert period["reason"].startswith("would move")
    assert period["size"] == max(c["size"] for c in body["conflicts"])  # largest first
    assert body["conflicts"][0] == period
    # The run's report carries the same section.
    assert client.get(f"/runs/{RUN}").json()["quality"] == body


def test_the_quality_page_and_unknown_runs(client: TestClient) -> None:
    response = client.get(f"/runs/{RUN}/quality.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.count("<svg") == 3
    assert "179.461" in page and "180.39" in page
    assert "Conflicts left to a maintainer" in page
    # BD+20 594 b's temperature: NASA 546 K, exoplanet.eu 386 K, OEC 541 K; none changed.
    conflicts = page[page.index("Conflicts left") : page.index("Disagreements between")]
    assert "BD+20 594 b" in conflicts and "546" in conflicts and "386" in conflicts
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert client.get("/runs/nope/quality").status_code == 404
    assert client.get("/runs/nope/quality.html").status_code == 404


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not installed (apt-get install chromium)"
)
def test_chromium_renders_the_tables_and_charts(client: TestClient, tmp_path: Path) -> None:
    page = tmp_path / "quality.html"
    page.write_text(client.get(f"/runs/{RUN}/quality.html").text, encoding="utf-8")
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        done = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,2000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    dom = done.stdout
    # The DOM as parsed and laid out by a browser, not our string: tables, SVG, details.
    assert '<table class="summary">' in dom
    assert '<table class="disagreements">' in dom
    assert dom.count("<svg") == 3 and dom.count("<rect") > 10
    assert dom.count('<details class="rejected">') == 2
    assert dom.count('<details class="ambiguous">') == 2
    assert "not a number: 'n/a'" in dom
    assert "Kepler-11 b" in dom
