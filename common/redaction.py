"""Secrets out of every text that leaves the process: log lines, alerts, reports.

One :class:`Redactor` class. The process has one instance, :data:`REDACTOR`, that logging
configuration (``common.logging.configure``) installs on every handler and on the loggers
of the libraries that may echo what they were sent (PyGithub, urllib3); whoever holds a
secret registers it there (the GitHub sink its token). An alert builds its own from the
settings it is sent with (:meth:`Redactor.of`).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

__all__ = ["REDACTED", "REDACTOR", "Redactor", "secret_values"]

REDACTED = "***"
# scheme://user:password@host -> scheme://***@host, whatever produced the text (git, pika).
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
# Shorter "secrets" from settings would blank ordinary words out of the text and protect
# nothing (the default broker password is "guest").
_MIN_SECRET_LENGTH = 4


def secret_values(value: object) -> Iterator[str]:
    """Every secret string inside a settings object, including a URL's password alone."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        yield secret
        try:
            password = urlsplit(secret).password
        except ValueError:
            password = None
        if password:
            yield password
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_values(getattr(value, name))


class Redactor(logging.Filter):
    """Replaces every registered secret (a token also in its Basic-auth forms) and any
    ``user:password@`` in a URL by ``***``; as a logging filter, in every record it sees,
    tracebacks included."""

    LOGGERS = (
        "oec_sync",
        "oec_sync.publisher.github",
        "github",
        "github.Requester",
        "github.GithubRetry",
        "github.MainClass",
        "urllib3",
        "urllib3.connectionpool",
        "urllib3.util.retry",
    )

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._ordered: list[str] = []

    @classmethod
    def of(cls, settings: BaseModel) -> Redactor:
        """A redactor of every secret in ``settings`` (long enough to be one)."""
        redactor = cls()
        for secret in secret_values(settings):
            if len(secret) >= _MIN_SECRET_LENGTH:
                redactor._register(secret)
        return redactor

    def add(self, secret: str) -> None:
        """Register a token: itself and the Basic-auth forms git and HTTP clients send."""
        if not secret:
            return
        self._register(secret)
        for user in ("x-access-token", "token", ""):
            self._register(base64.b64encode(f"{user}:{secret}".encode()).decode())

    def _register(self, secret: str) -> None:
        self.secrets.add(secret)
        # Longest first: a URL before the password inside it.
        self._ordered = sorted(self.secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._ordered:
            text = text.replace(secret, REDACTED)
        return _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and self.secrets:
            # Formatters render exc_info themselves; a traceback that would show a secret
            # is folded into the (redacted) message instead.
            trace = logging.Formatter().formatException(record.exc_info)
            if self(trace) != trace:
                record.msg, record.args = f"{record.msg}\n{self(trace)}", ()
                record.exc_info, record.exc_text = None, None
        return True

    def install(self, *handlers: logging.Handler) -> None:
        """Filter ``handlers`` and the loggers of :attr:`LOGGERS` (a library's record meets
        its own logger's filters even when no handler of ours writes it)."""
        for filterer in (*handlers, *(logging.getLogger(name) for name in self.LOGGERS)):
            if self not in filterer.filters:
                filterer.addFilter(self)


REDACTOR = Redactor()
"""The process's redactor, installed by logging configuration."""
