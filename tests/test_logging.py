"""Per-level log files with daily rotation, in a real directory."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import Settings
from common.logging import configure, log_context


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def file_handlers() -> list[logging.handlers.TimedRotatingFileHandler]:
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    ]


def test_each_file_holds_its_level_and_above(tmp_path: Path, restore_logging: None) -> None:
    configure("merger", "DEBUG", True, tmp_path, retention_days=3)
    log = logging.getLogger("services.merger")
    with log_context(run_id="20260822-1a2b3c4d"):
        log.debug("matched by name")
        log.info("handled")
        log.warning("slow broker")
        log.error("no such file")
    for handler in file_handlers():
        handler.flush()
    folder = tmp_path / "merger"
    msgs = {name: [line["msg"] for line in lines(folder / name)] for name in os.listdir(folder)}
    assert msgs == {
        "debug.log": ["matched by name", "handled", "slow broker", "no such file"],
        "info.log": ["handled", "slow broker", "no such file"],
        "warning.log": ["slow broker", "no such file"],
        "error.log": ["no such file"],
    }
    error = lines(folder / "error.log")[0]
    assert error["service"] == "merger" and error["run_id"] == "20260822-1a2b3c4d"
    assert error["level"] == "ERROR"


def test_no_file_below_the_configured_level(tmp_path: Path, restore_logging: None) -> None:
    configure("fetcher", "INFO", True, tmp_path)
    assert sorted(Path(h.baseFilename).name for h in file_handlers()) == [
        "error.log",
        "info.log",
        "warning.log",
    ]
    assert all(h.when == "MIDNIGHT" and h.backupCount == 14 and h.utc for h in file_handlers())


def test_rollover_keeps_retention_days_of_files(tmp_path: Path, restore_logging: None) -> None:
    configure("publisher", "INFO", True, tmp_path, retention_days=2)
    log = logging.getLogger("services.publisher")
    (info,) = [h for h in file_handlers() if h.baseFilename.endswith("info.log")]
    folder = tmp_path / "publisher"
    day = 86_400
    midnight = (int(info.rolloverAt) // day) * day  # midnight UTC starting the next day
    for n in range(4):
        log.info("day %d", n)
        info.flush()
        # A day passes: the file is renamed for the day that ended (rolloverAt - 1 day).
        info.rolloverAt = midnight + (n + 1) * day
        info.doRollover()
    log.info("today")
    info.flush()
    rolled = sorted(f for f in os.listdir(folder) if f.startswith("info.log."))
    assert len(rolled) == 2  # backupCount: the two newest days, older ones pruned
    assert [lines(folder / f)[0]["msg"] for f in rolled] == ["day 2", "day 3"]
    assert [line["msg"] for line in lines(folder / "info.log")] == ["today"]


def test_settings_name_the_log_directory_and_retention(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OEC_SYNC_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("OEC_SYNC_LOG_RETENTION_DAYS", "30")
    settings = Settings()
    assert (settings.log_dir, settings.log_retention_days) == (tmp_path, 30)
    monkeypatch.setenv("OEC_SYNC_LOG_RETENTION_DAYS", "0")
    with pytest.raises(ValueError):
        Settings()


def test_every_line_goes_through_the_one_redactor(tmp_path: Path, restore_logging: None) -> None:
    from common.redaction import REDACTOR

    configure("publisher", "INFO", True, tmp_path)
    REDACTOR.add("ghp_logging-test-secret")
    log = logging.getLogger("services.publisher.anything")  # no filter of its own
    log.info("push to https://x-access-token:ghp_logging-test-secret@github.com/me/oec")
    log.info("broker at amqp://oec:hunter22@rabbitmq:5672/")
    for handler in file_handlers():
        handler.flush()
    written = [line["msg"] for line in lines(tmp_path / "publisher" / "info.log")]
    assert written == [
        "push to https://***@github.com/me/oec",
        "broker at amqp://***@rabbitmq:5672/",
    ]
