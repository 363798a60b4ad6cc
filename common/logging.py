"""Log lines as JSON, each carrying the service and, while a message is handled, its ids.

The bus's LogContext middleware sets the context (``run_id``, ``message_id``,
``routing_key``, ``queue``) around every handler call, so a handler's own ``log.info(...)``
is attributable without passing ids around::

    {"ts": "2026-08-22T06:00:01.123Z", "level": "INFO", "service": "merger",
     "logger": "common.bus.rabbitmq", "msg": "handled", "run_id": "20260822-1a2b3c4d",
     "message_id": "9f...", "routing_key": "planet.matched"}

With a log directory (``OEC_SYNC_LOG_DIR``) the same lines also go to files, one per level,
under ``<dir>/<service>/``: ``debug.log``, ``info.log``, ``warning.log``, ``error.log``. Each
file holds its level *and above* (error.log: ERROR and CRITICAL; info.log: everything but
DEBUG), so ``error.log`` is the short list to read first and ``info.log`` the whole story.
Only levels at or above the configured level get a file (at INFO there is no debug.log).
Files roll over at midnight UTC to ``info.log.YYYY-MM-DD``; ``OEC_SYNC_LOG_RETENTION_DAYS``
rolled files are kept per level. One process per directory: TimedRotatingFileHandler does not
coordinate rollovers between processes, hence the per-service folder (replicas of one
service need directories of their own, as pods have).

Every line goes through the process's secret redactor (common/redaction.py).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.redaction import REDACTOR

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "oec_sync_log_context", default=None
)
_service = "oec-sync"

# Attributes every LogRecord has; anything else passed as ``extra=`` is logged as a field.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

LEVEL_FILES: dict[int, str] = {
    logging.DEBUG: "debug.log",
    logging.INFO: "info.log",
    logging.WARNING: "warning.log",
    logging.ERROR: "error.log",
}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to every log line written inside the block (this thread/task only)."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": _service,
            "logger": record.name,
            "msg": record.getMessage(),
            **(_context.get() or {}),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={v}" for k, v in (_context.get() or {}).items())
        text = f"{record.levelname:<7} {_service} {record.name}: {record.getMessage()}"
        text = f"{text} [{context}]" if context else text
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def level_files(
    directory: Path, level: int, retention_days: int, formatter: logging.Formatter
) -> list[logging.handlers.TimedRotatingFileHandler]:
    """One daily-rotated file per level from ``level`` up, each taking its level and above."""
    directory.mkdir(parents=True, exist_ok=True)
    handlers = []
    for threshold, name in LEVEL_FILES.items():
        if threshold < level:
            continue
        handler = logging.handlers.TimedRotatingFileHandler(
            directory / name,
            when="midnight",
            backupCount=retention_days,
            encoding="utf-8",
            delay=True,  # a level that never logs leaves no empty file behind
            utc=True,  # the lines' timestamps are UTC: so are the files' days
        )
        handler.setLevel(threshold)
        handler.setFormatter(formatter)
        handlers.append(handler)
    return handlers


def configure(
    service: str,
    level: str = "INFO",
    json_lines: bool = True,
    log_dir: Path | None = None,
    retention_days: int = 14,
) -> None:
    """Send every log line of the process to stderr, formatted for ``service``; with
    ``log_dir``, also to per-level files under ``log_dir/service`` (see the module doc)."""
    global _service
    _service = service
    formatter = JsonFormatter() if json_lines else TextFormatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()  # a reconfigured process must not keep its old files open
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if log_dir is not None:
        root.handlers += level_files(log_dir / service, root.level, retention_days, formatter)
    # Every line is written through the process's redactor: a token a library echoes, or
    # credentials inside a URL, never reach a terminal or a file.
    REDACTOR.install(*root.handlers)
    # pika logs each failed connection attempt as an ERROR with a traceback; the bus logs
    # every connection problem itself, once, with its backoff.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
