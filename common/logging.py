"""Log lines as JSON, each carrying the service and, while a message is handled, its ids.

The bus sets the context (``run_id``, ``message_id``, ``routing_key``) around every handler
call, so a handler's own ``log.info(...)`` is attributable without passing ids around::

    {"ts": "2026-08-22T06:00:01.123Z", "level": "INFO", "service": "merger",
     "logger": "common.bus.rabbitmq", "msg": "handled", "run_id": "20260822-1a2b3c4d",
     "message_id": "9f...", "routing_key": "planet.matched"}
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "oec_sync_log_context", default=None
)
_service = "oec-sync"

# Attributes every LogRecord has; anything else passed as ``extra=`` is logged as a field.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to every log line written inside the block (this thread/task only)."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


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


def configure(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    """Send every log line of the process to stderr, formatted for ``service``."""
    global _service
    _service = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika logs each failed connection attempt as an ERROR with a traceback; the bus logs
    # every connection problem itself, once, with its backoff.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
