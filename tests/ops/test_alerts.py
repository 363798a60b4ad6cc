"""Alerts reach a real SMTP relay and a real HTTP receiver on 127.0.0.1, and leak no secret."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from common import alerts
from common.alerts import Alert, AlertKind, Notifier, notify
from common.config import AlertSettings, Settings
from tests.ops.receivers import free_port, self_signed, smtp_relay, webhook_receiver

GITHUB_TOKEN = "ghp_0123456789abcdefTOKENabcdef0123456789"
BROKER_PASSWORD = "br0ker-Passw0rd-xyz"
SMTP_PASSWORD = "smtp-Passw0rd-4-alerts"
HOOK_TOKEN = "T000/B000/hook-secret-XXXXXXXX"
SECRETS = (GITHUB_TOKEN, BROKER_PASSWORD, SMTP_PASSWORD, HOOK_TOKEN)


@pytest.fixture
def caplog_alerts(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="common.alerts"):
        yield caplog


def settings(**alert_options: object) -> Settings:
    return Settings(
        github_token=SecretStr(GITHUB_TOKEN),
        amqp_url=SecretStr(f"amqp://oec:{BROKER_PASSWORD}@rabbitmq:5672/%2F"),
        alerts=AlertSettings.model_validate(alert_options),
    )


def push_alert() -> Alert:
    # What a careless caller might hand over: git's error with the token in the remote URL.
    error = (
        f"fatal: unable to access 'https://x-access-token:{GITHUB_TOKEN}@github.com/me/oec/':"
        " The requested URL returned error: 403"
    )
    return alerts.push_failed("oec-sync/Kepler-11", error, run_id="20260822-1a2b3c4d")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def parse(envelope_content: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(envelope_content, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_email_through_a_plain_relay_carries_the_alert() -> None:
    with smtp_relay() as (box, port):
        notify(
            alerts.no_catalogue("20260822-00000000", {"nasa": "timeout", "exoplanet.eu": "503"}),
            settings(
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_from="oec-sync@example.org",
                smtp_to=["ops@example.org", "astro@example.org"],
                smtp_starttls=False,
            ),
        )
    [envelope] = box.messages
    assert envelope.mail_from == "oec-sync@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "astro@example.org"]
    message = parse(envelope.original_content or b"")
    assert message["Subject"] == (
        "[oec-sync] fetcher: no catalogue could be downloaded; nothing was published"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-OEC-Sync-Alert"] == "no_catalogue"
    body = message.get_content()
    assert "run:      20260822-00000000" in body
    assert "nasa: timeout" in body
    assert "exoplanet.eu: 503" in body


def test_email_with_starttls_and_login_keeps_secrets_out(
    tmp_path: Path, caplog_alerts: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("cryptography", reason="makes the relay's test certificate")
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_relay("alerts", SMTP_PASSWORD, server_tls) as (box, port):
        notify(
            push_alert(),
            settings(
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_from="oec-sync@example.org",
                smtp_to=["ops@example.org"],
                smtp_user="alerts",
                smtp_password=SMTP_PASSWORD,
                smtp_ca_file=cert,
            ),
        )
    assert box.logins == [("alerts", SMTP_PASSWORD)]
    [envelope] = box.messages
    raw = (envelope.original_content or b"").decode()
    assert_no_secret(raw)
    assert "https://***@github.com/me/oec/" in parse(raw.encode()).get_content()
    assert "delivery failed" not in caplog_alerts.text
    assert_no_secret(caplog_alerts.text)


def test_a_refused_login_is_logged_without_the_password(
    tmp_path: Path, caplog_alerts: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("cryptography", reason="makes the relay's test certificate")
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_relay("alerts", "the-right-one", server_tls) as (box, port):
        notify(
            push_alert(),
            settings(
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_from="oec-sync@example.org",
                smtp_to=["ops@example.org"],
                smtp_user="alerts",
                smtp_password=SMTP_PASSWORD,
                smtp_ca_file=cert,
            ),
        )
    assert box.messages == []
    assert "e-mail delivery failed: SMTPAuthenticationError" in caplog_alerts.text
    assert_no_secret(caplog_alerts.text)


def test_an_unreachable_relay_does_not_raise(caplog_alerts: pytest.LogCaptureFixture) -> None:
    notify(
        push_alert(),
        settings(
            smtp_host="127.0.0.1",
            smtp_port=free_port(),  # nothing listens there
            smtp_from="oec-sync@example.org",
            smtp_to=["ops@example.org"],
            smtp_timeout=2,
        ),
    )
    assert "e-mail delivery failed: ConnectionRefusedError" in caplog_alerts.text


def test_webhook_gets_the_alert_as_json() -> None:
    with webhook_receiver() as (hook, port):
        url = f"http://127.0.0.1:{port}/services/{HOOK_TOKEN}"
        notify(
            alerts.dead_lettered(
                "merger",
                "oec-sync.merger.dead",
                "planet.matched",
                "9f0e",
                "InvalidSystemFileError: systems/Kepler-11.xml: two <name> elements",
                run_id="20260822-1a2b3c4d",
            ),
            settings(webhook_url=url),
        )
    [(path, body)] = hook.requests
    assert path == f"/services/{HOOK_TOKEN}"
    assert body["kind"] == "dead_letter"
    assert body["service"] == "merger"
    assert body["run_id"] == "20260822-1a2b3c4d"
    assert body["details"]["queue"] == "oec-sync.merger.dead"
    assert body["text"].startswith("[oec-sync] merger: a planet.matched message was dead-lettered")
    dt.datetime.fromisoformat(body["occurred_at"])


def test_webhook_body_is_redacted() -> None:
    with webhook_receiver() as (hook, port):
        notify(push_alert(), settings(webhook_url=f"http://127.0.0.1:{port}/{HOOK_TOKEN}"))
    [(_, body)] = hook.requests
    assert_no_secret(str(body))
    assert "x-access-token" not in body["details"]["error"]


def test_a_failing_webhook_is_logged_without_its_url(
    caplog_alerts: pytest.LogCaptureFixture,
) -> None:
    with webhook_receiver(status=500) as (hook, port):
        notify(push_alert(), settings(webhook_url=f"http://127.0.0.1:{port}/{HOOK_TOKEN}"))
    assert len(hook.requests) == 1
    assert "webhook delivery failed: HTTPStatusError" in caplog_alerts.text
    assert_no_secret(caplog_alerts.text)


def test_both_channels_each_get_one() -> None:
    with smtp_relay() as (box, smtp_port), webhook_receiver() as (hook, http_port):
        notify(
            push_alert(),
            settings(
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,
                smtp_from="oec-sync@example.org",
                smtp_to=["ops@example.org"],
                smtp_starttls=False,
                webhook_url=f"http://127.0.0.1:{http_port}/hook",
            ),
        )
    assert len(box.messages) == 1
    assert len(hook.requests) == 1


def test_without_a_channel_the_alert_is_logged(caplog_alerts: pytest.LogCaptureFixture) -> None:
    notify(push_alert(), settings())
    assert "alert push_failed from publisher: could not push oec-sync/Kepler-11" in (
        caplog_alerts.text
    )
    assert "no alert channel configured" in caplog_alerts.text
    assert_no_secret(caplog_alerts.text)


def test_notifier_holds_back_repeats_and_counts_them() -> None:
    now = dt.datetime(2026, 8, 22, 6, 0, tzinfo=dt.UTC)
    clock = [now]
    with webhook_receiver() as (hook, port):
        notifier = Notifier(
            settings(webhook_url=f"http://127.0.0.1:{port}/hook", cooldown_minutes=30),
            clock=lambda: clock[0],
        )
        dead = alerts.dead_lettered("merger", "oec-sync.merger.dead", "planet.matched", "1", "x")
        assert notifier(dead)
        assert not notifier(dead)
        assert not notifier(dead)
        assert notifier(alerts.dead_lettered("indexer", "q", "catalogue.downloaded", "2", "y"))
        clock[0] = now + dt.timedelta(minutes=31)
        assert notifier(dead)
    assert [(b["service"], b["suppressed"]) for _, b in hook.requests] == [
        ("merger", 0),
        ("indexer", 0),
        ("merger", 2),
    ]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"smtp_host": "mail"}, "smtp_host needs smtp_from and smtp_to"),
        (
            {"smtp_host": "m", "smtp_from": "a@b", "smtp_to": ["c@d"], "smtp_ssl": True},
            "smtp_starttls and smtp_ssl exclude each other",
        ),
        ({"smtp_password": SMTP_PASSWORD}, "smtp_user and smtp_password go together"),
    ],
)
def test_bad_combinations_are_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, object], problem: str
) -> None:
    for name, value in options.items():
        encoded = value if isinstance(value, str) else str(value).replace("'", '"').lower()
        monkeypatch.setenv(f"OEC_SYNC_ALERTS__{name.upper()}", str(encoded))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert problem in str(refused.value)
    assert SMTP_PASSWORD not in str(refused.value)


def test_alert_kinds_have_factories() -> None:
    made = {
        alerts.no_catalogue(None, {}).kind,
        alerts.dead_lettered("merger", "q", "k", "m", "e").kind,
        alerts.push_failed("b", "e").kind,
        alerts.planets_failed("r", {"nasa row 2": "b: e"}).kind,
    }
    assert made == set(AlertKind)


def test_a_storm_of_failed_planets_makes_one_alert_of_bounded_size() -> None:
    planets = {f"nasa row {row}": f"P-{row} b: e" for row in range(2, 502)}
    alert = alerts.planets_failed("20260822-abcdef01", planets)
    assert alert.summary == "run 20260822-abcdef01 completed with 500 failed planets"
    assert len(alert.details) == alerts.ALERT_PLANETS + 1
    assert alert.details["nasa row 2"] == "P-2 b: e"
    assert alert.details["more"] == "450 more in GET /runs/20260822-abcdef01"
