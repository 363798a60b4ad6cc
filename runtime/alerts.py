"""Telling the admin that a run failed: by e-mail, by webhook, or at least in the log.

Four failures are worth a person's attention, one ``AlertKind`` each:

    NO_CATALOGUE   the fetcher downloaded nothing; the run did not start
    DEAD_LETTER    a service gave up on a message and parked it in a ``.dead`` queue
    PUSH_FAILED    the publisher could not push a branch or open its pull request
    PLANETS_FAILED a run completed without some planets: no merger could handle them

``notify(alert, settings)`` sends one alert on every configured channel and never raises
into its caller: a broken SMTP relay must not turn a dead letter into a crash loop. Failures
to deliver are logged. Every secret in the settings (GitHub token, broker password, SMTP
password, webhook URL), and any ``user:password@`` in a URL, is blanked out of the alert's text
and of every log line before it leaves this module.

``Notifier`` adds a cooldown per (kind, service), so a dead-letter storm of a thousand planet
messages sends one e-mail that says how many followed, not a thousand.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.config import AlertSettings, Settings
from runtime.redaction import Redactor

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Alert",
    "AlertKind",
    "Notifier",
    "dead_lettered",
    "no_catalogue",
    "notify",
    "planets_failed",
    "post_webhook",
    "push_failed",
    "send_email",
]

log = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AlertKind(StrEnum):
    NO_CATALOGUE = "no_catalogue"
    DEAD_LETTER = "dead_letter"
    PUSH_FAILED = "push_failed"
    PLANETS_FAILED = "planets_failed"


class Alert(BaseModel):
    """One failure worth a person's attention; what the e-mail and the webhook carry."""

    model_config = ConfigDict(frozen=True)

    kind: AlertKind
    service: str = Field(description="fetcher, indexer, merger, publisher or run (embedded)")
    summary: str = Field(description="one line: what went wrong")
    run_id: str | None = None
    details: dict[str, str] = {}
    occurred_at: dt.datetime = Field(default_factory=_utcnow)
    suppressed: int = Field(0, description="like alerts held back by the cooldown before this")

    @property
    def key(self) -> tuple[AlertKind, str]:
        return (self.kind, self.service)

    def subject(self) -> str:
        return f"[oec-sync] {self.service}: {self.summary}"

    def text(self) -> str:
        """The plain-text body of the e-mail."""
        lines = [
            self.summary,
            "",
            f"kind:     {self.kind.value}",
            f"service:  {self.service}",
            f"run:      {self.run_id or '-'}",
            f"time:     {self.occurred_at.isoformat(timespec='seconds')}",
        ]
        if self.suppressed:
            lines.append(f"held back: {self.suppressed} like alerts since the last one sent")
        if self.details:
            lines.append("")
            lines.extend(f"{name}: {value}" for name, value in self.details.items())
        lines += ["", "Runbook: docs/operations.md, section 'Recover'."]
        return "\n".join(lines) + "\n"

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body; ``text`` makes it readable by Slack-style receivers too."""
        return {"text": self.subject(), **self.model_dump(mode="json")}

    def redacted(self, redact: Callable[[str], str]) -> Alert:
        return self.model_copy(
            update={
                "summary": redact(self.summary),
                "details": {k: redact(v) for k, v in self.details.items()},
            }
        )


def no_catalogue(run_id: str | None, errors: Mapping[str, str]) -> Alert:
    """The fetcher's alert: no catalogue could be downloaded (``errors``: source -> reason)."""
    return Alert(
        kind=AlertKind.NO_CATALOGUE,
        service="fetcher",
        summary="no catalogue could be downloaded; nothing was published",
        run_id=run_id,
        details=dict(errors),
    )


def dead_lettered(
    service: str,
    queue: str,
    routing_key: str,
    message_id: str,
    error: str,
    run_id: str | None = None,
) -> Alert:
    """A message that ``service`` gave up on and parked in ``queue``."""
    return Alert(
        kind=AlertKind.DEAD_LETTER,
        service=service,
        summary=f"a {routing_key} message was dead-lettered to {queue}",
        run_id=run_id,
        details={"queue": queue, "message_id": message_id, "error": error},
    )


def push_failed(branch: str, error: str, run_id: str | None = None) -> Alert:
    """The publisher could not push ``branch`` or open/update its pull request."""
    return Alert(
        kind=AlertKind.PUSH_FAILED,
        service="publisher",
        summary=f"could not push {branch}",
        run_id=run_id,
        details={"branch": branch, "error": error},
    )


ALERT_PLANETS = 50  # planets named in one alert; the run's report has them all


def planets_failed(run_id: str, planets: Mapping[str, str]) -> Alert:
    """A run completed without these planets (``planets``: "source row N" -> "name: error")."""
    count = len(planets)
    details = dict(list(planets.items())[:ALERT_PLANETS])
    if count > ALERT_PLANETS:
        details["more"] = f"{count - ALERT_PLANETS} more in GET /runs/{run_id}"
    return Alert(
        kind=AlertKind.PLANETS_FAILED,
        service="publisher",
        summary=f"run {run_id} completed with {count} failed planet{'s' * (count != 1)}",
        run_id=run_id,
        details=details,
    )


def send_email(alert: Alert, config: AlertSettings) -> None:
    """Send ``alert`` through the SMTP relay; raises OSError/smtplib.SMTPException on failure."""
    # Imported here, as httpx below: every run builds alerts, few send one (0.13 s).
    import email.policy
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    assert config.smtp_host and config.smtp_from
    # Python folds a long Subject right after "Subject:", which readers show with a leading
    # blank; RFC 5322's hard limit is 998, so long headers stay on one line instead.
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["Subject"] = alert.subject()
    message["From"] = config.smtp_from
    message["To"] = ", ".join(config.smtp_to)
    message["Date"] = format_datetime(alert.occurred_at)
    message["Message-ID"] = make_msgid(domain="oec-sync.invalid")
    # RFC 3834: tells vacation responders and ticket systems not to answer a robot.
    message["Auto-Submitted"] = "auto-generated"
    message["X-OEC-Sync-Alert"] = alert.kind.value
    message.set_content(alert.text())

    context = ssl.create_default_context(
        cafile=str(config.smtp_ca_file) if config.smtp_ca_file else None
    )
    smtp: smtplib.SMTP
    if config.smtp_ssl:
        smtp = smtplib.SMTP_SSL(
            config.smtp_host, config.smtp_port, timeout=config.smtp_timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout)
    with smtp:
        if config.smtp_starttls:
            smtp.starttls(context=context)
        if config.smtp_user and config.smtp_password:
            smtp.login(config.smtp_user, config.smtp_password.get_secret_value())
        smtp.send_message(message)


def post_webhook(alert: Alert, config: AlertSettings, client: httpx.Client | None = None) -> None:
    """POST ``alert.payload()`` as JSON; raises httpx.HTTPError unless the answer is 2xx."""
    import httpx

    assert config.webhook_url
    url = config.webhook_url.get_secret_value()
    if client is None:
        with httpx.Client(timeout=config.webhook_timeout) as own:
            own.post(url, json=alert.payload()).raise_for_status()
    else:
        client.post(url, json=alert.payload(), timeout=config.webhook_timeout).raise_for_status()


def notify(alert: Alert, settings: Settings) -> None:
    """Report ``alert`` on every configured channel; logs, never raises, what fails."""
    try:
        redact = Redactor.of(settings)
        alert = alert.redacted(redact)
        config = settings.alerts
        log.warning("alert %s from %s: %s", alert.kind.value, alert.service, alert.summary)
        channels: list[tuple[str, Callable[[], None]]] = []
        if config.email_enabled:
            channels.append(("e-mail", lambda: send_email(alert, config)))
        if config.webhook_url:
            channels.append(("webhook", lambda: post_webhook(alert, config)))
        if not channels:
            log.warning("no alert channel configured (OEC_SYNC_ALERTS__SMTP_HOST, __WEBHOOK_URL)")
        for name, send in channels:
            try:
                send()
            except Exception as exc:
                log.error(
                    "alert %s: %s delivery failed: %s: %s",
                    alert.kind.value,
                    name,
                    type(exc).__name__,
                    redact(str(exc)),
                )
    except Exception as exc:  # the promise: an alert never takes its caller down
        log.error("alert could not be prepared: %s", type(exc).__name__)


class Notifier:
    """``notify`` with a cooldown per (kind, service); thread-safe.

    The first alert of a key is sent at once; like ones within ``alerts.cooldown_minutes`` are
    counted, and the next one sent after the cooldown carries that count.
    """

    def __init__(self, settings: Settings, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.settings = settings
        self.cooldown = dt.timedelta(minutes=settings.alerts.cooldown_minutes)
        self.clock = clock
        self._lock = threading.Lock()
        self._last_sent: dict[tuple[AlertKind, str], dt.datetime] = {}
        self._held: dict[tuple[AlertKind, str], int] = {}

    def __call__(self, alert: Alert) -> bool:
        """True if the alert went to ``notify``, False if the cooldown held it back."""
        with self._lock:
            now = self.clock()
            last = self._last_sent.get(alert.key)
            if last is not None and now - last < self.cooldown:
                self._held[alert.key] = self._held.get(alert.key, 0) + 1
                return False
            self._last_sent[alert.key] = now
            held = self._held.pop(alert.key, 0)
        notify(alert.model_copy(update={"suppressed": held}) if held else alert, self.settings)
        return True
