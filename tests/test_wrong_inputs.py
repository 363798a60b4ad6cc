"""Wrong inputs cost one clear line naming the input, and write nothing.

Each test gives ``oec-sync`` one wrong input, as a user would by mistake, and checks the
exit status, the line it prints, and that no branch, no PR draft and no report appeared.
The catalogue files are the bundled real sample and real fixtures.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from common.records import Source
from runtime.archive import Archive
from services.cli import app
from tests.gitutil import git, make_repo
from tests.httputil import QuietHandler, serving
from tests.paths import FIXTURES, SAMPLE

NASA = str(SAMPLE / "nasa.csv")
EU = str(SAMPLE / "eu.csv")
NEITHER = str(FIXTURES / "catalogues" / "wrong_header.csv")  # NASA's column-mapping table

NASA_AS_EU = (
    f"exoplanet.eu failed: {NASA}: a NASA Exoplanet Archive table, not an exoplanet.eu "
    "export: pass it with --nasa"
)
EU_AS_NASA = (
    f"nasa failed: {EU}: an exoplanet.eu export, not a NASA Exoplanet Archive table: "
    "pass it with --eu"
)
NOTHING_READ = "no catalogue could be read; nothing written"
T0 = dt.datetime(2026, 8, 1, 6, 0, tzinfo=dt.UTC)


class Run:
    """``oec-sync run`` against one OEC checkout, with its outbox and report beside it."""

    def __init__(self, tmp: Path, repo: Path) -> None:
        self.repo = repo
        self.outbox = tmp / "outbox"
        self.report = tmp / "report.json"
        self.quality = tmp / "quality.html"

    def __call__(self, *args: str, repo: Path | None = None) -> Result:
        argv = ["run", "--oec-repo", str(repo or self.repo), "--max-prs", "0", *args]
        argv += ["--outbox", str(self.outbox), "--report", str(self.report)]
        return CliRunner().invoke(app, [*argv, "--quality-html", str(self.quality)])

    def branches(self, repo: Path | None = None) -> dict[str, str]:
        """Branch -> the tree it holds (commit ids carry the time of the run)."""
        out = git(repo or self.repo, "for-each-ref", "--format=%(refname) %(tree)")
        refs = (line.split(" ", 1) for line in out.splitlines())
        return {ref: sha for ref, sha in refs if ref.startswith("refs/heads/oec-sync/")}

    def assert_nothing_written(self, repo: Path | None = None) -> None:
        assert self.branches(repo) == {}
        assert not self.outbox.exists()
        assert not self.report.exists()
        assert not self.quality.exists()


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path, make_repo(tmp_path / "oec"))


def lines(result: Result) -> list[str]:
    """What the command printed (stdout and stderr), without blank lines."""
    return [line for line in result.output.splitlines() if line.strip()]


def usage_error(result: Result) -> str:
    """The one error line of a refused command line (click prints usage lines above it)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in lines(result) if not line.startswith(("Usage:", "Try "))]
    assert len(errors) == 1, result.output
    return errors[0]


def unused_port() -> int:
    """A local port nobody listens on (bound once to get it, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a catalogue that is not what its flag says ----------------------------------------------


def test_a_nasa_file_as_the_only_catalogue_given_as_eu(run: Run) -> None:
    result = run("--eu", NASA)
    assert result.exit_code == 1
    assert lines(result) == [NASA_AS_EU, NOTHING_READ]
    run.assert_nothing_written()


def test_an_eu_file_as_the_only_catalogue_given_as_nasa(run: Run) -> None:
    result = run("--nasa", EU)
    assert result.exit_code == 1
    assert lines(result) == [EU_AS_NASA, NOTHING_READ]
    run.assert_nothing_written()


def test_both_files_swapped(run: Run) -> None:
    result = run("--nasa", EU, "--eu", NASA)
    assert result.exit_code == 1
    assert lines(result) == [EU_AS_NASA, NASA_AS_EU, NOTHING_READ]
    run.assert_nothing_written()


def test_a_nasa_file_given_as_eu_leaves_nasa_proposing_what_it_proposes_alone(
    run: Run, tmp_path: Path
) -> None:
    # Before: the NASA file was read as NASA under exoplanet.eu's promise of 85 planets,
    # which never arrived, so the run never completed and proposed nothing at all.
    alone = Run(tmp_path / "alone", make_repo(tmp_path / "alone" / "oec"))
    assert alone("--nasa", NASA).exit_code == 0

    result = run("--nasa", NASA, "--eu", NASA)
    assert result.exit_code == 0, result.output
    assert NASA_AS_EU in lines(result)
    report = json.loads(run.report.read_text(encoding="utf-8"))
    assert report["complete"] is True
    assert report["catalogues"]["exoplanet.eu"] == {"error": NASA_AS_EU.split(" failed: ")[1]}
    assert report["catalogues"]["nasa"]["rows"] == 85
    assert {c["source"] for s in report["systems"] for c in s["changes"]} == {"nasa"}
    assert len(run.branches()) == len(report["systems"]) > 10
    # The same branches, file for file, as a run given the NASA file alone.
    assert run.branches() == alone.branches()


def test_a_table_of_neither_catalogue(run: Run) -> None:
    result = run("--nasa", NEITHER)
    assert result.exit_code == 1
    assert lines(result) == [
        f"nasa failed: {NEITHER}: not a catalogue: the header (,,,,...) is neither a NASA "
        "Exoplanet Archive table (pl_name) nor an exoplanet.eu export (name, planet_status)",
        NOTHING_READ,
    ]
    run.assert_nothing_written()


# --- a catalogue that cannot be had ----------------------------------------------------------


def test_a_missing_catalogue_file(run: Run) -> None:
    missing = str(run.repo.parent / "nope.csv")
    line = usage_error(run("--nasa", missing, "--eu", EU))
    assert line == f"Error: Invalid value for '--nasa': {missing} does not exist"
    run.assert_nothing_written()


def test_a_directory_given_as_a_catalogue_file(run: Run) -> None:
    line = usage_error(run("--eu", str(SAMPLE)))
    assert line == f"Error: Invalid value for '--eu': {SAMPLE} is a directory, not a file"
    run.assert_nothing_written()


def test_an_unreachable_url_as_the_only_catalogue(run: Run) -> None:
    url = f"http://127.0.0.1:{unused_port()}/nasa.csv"
    result = run("--nasa", url)
    assert result.exit_code == 1
    [failed, conclusion] = lines(result)
    assert failed.startswith(f"nasa failed: {url}: unreachable (")
    assert conclusion == NOTHING_READ
    run.assert_nothing_written()


@contextmanager
def catalogue_server(files: dict[str, Path]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``files`` by name (404 for anything else); yields
    its base URL."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            path = files.get(self.path.lstrip("/"))
            body = path.read_bytes() if path is not None else b"no such file"
            self.send_response(200 if path is not None else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}"


def test_a_url_answering_404_is_reported_and_the_catalogue_at_the_other_url_runs(
    run: Run,
) -> None:
    with catalogue_server({"eu.csv": SAMPLE / "eu.csv"}) as base:
        result = run("--nasa", f"{base}/nasa.csv", "--eu", f"{base}/eu.csv")
    assert result.exit_code == 0, result.output
    assert f"nasa failed: {base}/nasa.csv: HTTP 404 Not Found" in lines(result)
    report = json.loads(run.report.read_text())
    assert report["catalogues"]["nasa"] == {"error": f"{base}/nasa.csv: HTTP 404 Not Found"}
    assert run.branches()  # exoplanet.eu's changes, downloaded over HTTP, were published


def test_no_catalogue_at_all(run: Run) -> None:
    line = usage_error(run())
    assert line == "Error: Invalid value for '--nasa' / '--eu': give at least one catalogue"
    run.assert_nothing_written()


# --- an OEC checkout that is none ------------------------------------------------------------


def test_a_git_repository_that_is_not_oec(run: Run, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("a\n")
    git(other, "init", "--quiet")
    git(other, "add", "a.txt")
    git(other, "commit", "--quiet", "-m", "a")
    line = usage_error(run("--nasa", NASA, "--eu", EU, repo=other))
    assert line == (
        f"Error: Invalid value for '--oec-repo': {other} has no systems/*.xml in its HEAD "
        "commit: not an OEC checkout"
    )
    run.assert_nothing_written(other)


def test_an_empty_git_repository(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    line = usage_error(run("--nasa", NASA, repo=empty))
    assert line == (
        f"Error: Invalid value for '--oec-repo': {empty} is a git repository without any commit"
    )
    assert not run.outbox.exists() and not run.report.exists()
    assert git(empty, "for-each-ref") == ""


def test_a_missing_checkout(run: Run, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    line = usage_error(run("--nasa", NASA, repo=missing))
    assert line == f"Error: Invalid value for '--oec-repo': {missing} does not exist"
    assert not missing.exists()
    run.assert_nothing_written()


def test_a_file_given_as_the_checkout(run: Run) -> None:
    file = run.repo / "systems" / "11 Com.xml"
    line = usage_error(run("--nasa", NASA, repo=file))
    assert line == f"Error: Invalid value for '--oec-repo': {file} is a file, not a directory"
    run.assert_nothing_written()


def test_a_folder_inside_the_checkout(run: Run) -> None:
    inside = run.repo / "systems"
    line = usage_error(run("--nasa", NASA, repo=inside))
    assert line == (
        f"Error: Invalid value for '--oec-repo': {inside} is inside the git checkout "
        f"{run.repo.resolve()}; give that"
    )
    run.assert_nothing_written()


# --- other options ---------------------------------------------------------------------------


def test_a_negative_cap(run: Run) -> None:
    line = usage_error(run("--nasa", NASA, "--max-prs", "-1"))
    assert line == (
        "Error: Invalid value for '--max-prs': Input should be greater than or equal to 0"
    )
    run.assert_nothing_written()


def test_a_directory_given_as_the_report(run: Run, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--oec-repo", str(run.repo), "--nasa", NASA, "--report", str(tmp_path)]
    )
    line = usage_error(result)
    assert line == f"Error: Invalid value for '--report': {tmp_path} is a directory, not a file"
    assert run.branches() == {}


def test_a_report_in_a_folder_that_does_not_exist(run: Run, tmp_path: Path) -> None:
    report = tmp_path / "nope" / "report.json"
    result = CliRunner().invoke(
        app, ["run", "--oec-repo", str(run.repo), "--nasa", NASA, "--report", str(report)]
    )
    line = usage_error(result)
    assert line == f"Error: Invalid value for '--report': {report.parent} does not exist"
    assert run.branches() == {}


def test_a_file_given_as_the_outbox(run: Run) -> None:
    result = CliRunner().invoke(
        app, ["run", "--oec-repo", str(run.repo), "--nasa", NASA, "--outbox", NASA]
    )
    line = usage_error(result)
    assert line == f"Error: Invalid value for '--outbox': {NASA} is a file, not a directory"
    assert run.branches() == {}


# --- the fetcher: the same checks before anything is published -------------------------------


def fetch(*args: str, **env: str) -> Result:
    # An AMQP URL nobody answers: these runs must fail before they would publish.
    env = {"OEC_SYNC_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{unused_port()}/%2F", **env}
    return CliRunner().invoke(app, ["fetcher", "--once", *args], env=env)


def test_the_fetcher_refuses_a_nasa_file_given_as_eu() -> None:
    result = fetch("--eu", NASA, OEC_SYNC_LOG_JSON="false")
    assert result.exit_code == 1
    assert NASA_AS_EU in result.stderr.splitlines()
    assert "no catalogue could be read; nothing published" in result.stderr.splitlines()
    assert result.stdout == ""  # no run id: no run


def test_the_fetcher_refuses_wrong_catalogues_from_its_settings() -> None:
    url = f"http://127.0.0.1:{unused_port()}/eu.csv"
    result = fetch(OEC_SYNC_NASA_URL=EU, OEC_SYNC_EU_URL=url, OEC_SYNC_LOG_JSON="false")
    assert result.exit_code == 1
    printed = result.stderr.splitlines()
    assert EU_AS_NASA in printed
    assert any(line.startswith(f"exoplanet.eu failed: {url}: unreachable (") for line in printed)
    assert result.stdout == ""


def test_the_fetcher_refuses_a_missing_file() -> None:
    result = fetch("--nasa", "/nope.csv")
    assert usage_error(result) == "Error: Invalid value for '--nasa': /nope.csv does not exist"


# --- snapshots reprocess: the same checkout check, and the same refusal of a wrong catalogue --


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "snapshots")


def reprocess(archive: Archive, *args: str, **env: str) -> Result:
    argv = ["snapshots", "reprocess", "--embedded", "--archive-dir", str(archive.root), *args]
    return CliRunner().invoke(app, argv, env=env)


def test_reprocess_refuses_a_checkout_that_is_none(run: Run, archive: Archive) -> None:
    snapshot = archive.store(Source.NASA, NASA, Path(NASA).read_bytes(), T0, "run-1")
    file = run.repo / "systems" / "11 Com.xml"
    line = usage_error(reprocess(archive, str(snapshot.id), "--oec-repo", str(file)))
    assert line == f"Error: Invalid value for '--oec-repo': {file} is a file, not a directory"
    missing = run.repo.parent / "nope"
    line = usage_error(reprocess(archive, str(snapshot.id), OEC_SYNC_OEC_REPO=str(missing)))
    assert line == (
        f"Error: Invalid value for '--oec-repo' / OEC_SYNC_OEC_REPO: {missing} does not exist"
    )


def test_reprocess_refuses_a_snapshot_that_is_the_other_catalogue(
    run: Run, archive: Archive
) -> None:
    # Archived as exoplanet.eu, but a NASA table: the indexer reads it as what it was given.
    snapshot = archive.store(Source.EU, NASA, Path(NASA).read_bytes(), T0, "run-1")
    result = reprocess(
        archive, str(snapshot.id), "--oec-repo", str(run.repo), "--outbox", str(run.outbox)
    )
    assert result.exit_code == 1
    assert NASA_AS_EU in lines(result)
    assert lines(result)[-1] == "reprocess failed: no catalogue could be read; nothing written"
    assert run.branches() == {}
    assert not run.outbox.exists()
