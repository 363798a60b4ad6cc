"""The one settings class: everything configurable, from the environment (``OEC_SYNC_*``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NASA_URL = (
    "https://exoplanetarchive.ipac.caltech.edu/TAP/sync?query=select+*+from+pscomppars&format=csv"
)
EU_URL = "https://exoplanet.eu/catalog/csv/"
MIN_TOKEN_LENGTH = 16  # a bearer token must not be guessable over HTTP


class AlertSettings(BaseModel):
    """Where a failed run is reported: e-mail (SMTP), a webhook (JSON POST), both or neither.

    ``OEC_SYNC_ALERTS__SMTP_HOST`` and friends; with neither channel set an alert is only
    logged.
    """

    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_from: str | None = None
    smtp_to: list[str] = Field(
        default_factory=list, description='recipients, a JSON list: ["ops@example.org"]'
    )
    smtp_starttls: bool = Field(True, description="upgrade the connection with STARTTLS")
    smtp_ssl: bool = Field(False, description="implicit TLS from the first byte (port 465)")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(10.0, gt=0, description="seconds")
    smtp_ca_file: Path | None = Field(None, description="CA bundle for a relay's private CA")
    # Webhook URLs usually embed their credential (Slack, Mattermost, Teams): a secret.
    webhook_url: SecretStr | None = None
    webhook_timeout: float = Field(10.0, gt=0, description="seconds")
    cooldown_minutes: float = Field(
        30.0, ge=0, description="after an alert, like ones (kind, service) are only counted"
    )

    @model_validator(mode="after")
    def _complete(self) -> AlertSettings:
        if self.smtp_host and not (self.smtp_from and self.smtp_to):
            raise ValueError("alerts: smtp_host needs smtp_from and smtp_to")
        if self.smtp_starttls and self.smtp_ssl:
            raise ValueError("alerts: smtp_starttls and smtp_ssl exclude each other")
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("alerts: smtp_user and smtp_password go together")
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)


class ArchiveSettings(BaseModel):
    """The snapshot archive: every download, gzip, by sha256 (``OEC_SYNC_ARCHIVE__*``)."""

    dir: Path | None = Field(None, description="default DATA_DIR/snapshots")
    max_age_days: int = Field(90, ge=0, description="older snapshots go; 0 keeps any age")
    max_count: int = Field(60, ge=0, description="snapshots kept per catalogue; 0 = no cap")


class BusSettings(BaseModel):
    """The RabbitMQ wiring (``OEC_SYNC_BUS__*``); common/topology.py explains each argument."""

    prefix: str = Field(
        "oec-sync",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="name of the exchange and prefix of every queue",
    )
    prefetch: int = Field(32, ge=1, le=10_000, description="unacked deliveries per consumer")
    delivery_limit: int = Field(
        5, ge=1, description="failed deliveries before a message goes to its .dead queue"
    )
    stream_max_age: str = Field(
        "7D", pattern=r"^\d+[YMDhms]$", description="replay log retention, RabbitMQ syntax"
    )
    stream_max_bytes: int = Field(5 * 2**30, ge=2**20, description="replay log retention")
    heartbeat: int = Field(30, ge=0, description="seconds; 0 turns AMQP heartbeats off")
    publish_timeout: float = Field(
        120.0, gt=0, description="seconds a publish may wait for the broker, reconnects included"
    )
    reconnect_max_delay: float = Field(30.0, gt=0, description="seconds; backoff cap")
    compress_min_bytes: int = Field(
        4096, ge=0, description="bodies this large travel gzip-compressed; 0 = never"
    )
    depth_poll_interval: float = Field(5.0, gt=0, description="seconds between queue depth polls")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OEC_SYNC_",
        env_nested_delimiter="__",
        secrets_dir=None,
        extra="ignore",
        # A refused value or combination must not echo a password or token at start-up.
        hide_input_in_errors=True,
    )

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/%2F")
    oec_repo: Path = Path("open_exoplanet_catalogue")
    data_dir: Path = Path(".oec-sync")
    outbox: Path | None = Field(
        None, description="where PR drafts go without a GitHub token; default DATA_DIR/outbox"
    )
    max_prs: int = Field(20, ge=0, description="systems proposed per run; 0 means no cap")
    processes: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 2),
        ge=0,
        description="processes a run matches, merges, builds and writes drafts in, itself "
        "included (runtime/forked.py); 0 or 1: itself alone; default 2 where there are 2 cores "
        "(each further one adds ~90 MiB to a first run's peak)",
    )
    max_open_prs: int = Field(
        0, ge=0, description="no new pull request while this many are open; 0 means no cap"
    )
    nasa_url: str = NASA_URL
    eu_url: str = EU_URL

    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_upstream: str = "OpenExoplanetCatalogue/open_exoplanet_catalogue"
    github_fork: str | None = None

    alerts: AlertSettings = AlertSettings()
    archive: ArchiveSettings = ArchiveSettings()

    bus: BusSettings = BusSettings()
    run_timeout: float = Field(
        6 * 3600.0,
        gt=0,
        description="seconds without news of an unfinished run before the publisher "
        "publishes what it has and marks the run incomplete",
    )
    github_webhook_secret: SecretStr | None = Field(
        None, description="checks X-Hub-Signature-256 on the indexer's /webhooks/github"
    )
    oec_upstream_ref: str = Field(
        "HEAD",
        description="the ref of OEC_REPO the indexer follows, e.g. refs/remotes/origin/master",
    )
    oec_fetch_remote: str | None = Field(
        None, description="remote the indexer fetches when told upstream moved; None = no fetch"
    )
    status_host: str = Field(
        "127.0.0.1",
        description="address the status APIs listen on; 0.0.0.0 in a container or pod",
    )
    status_token: SecretStr | None = Field(
        None,
        description="bearer token the status APIs ask for on every route but /healthz, "
        "/readyz and /metrics; None = no token (then bind to 127.0.0.1 only)",
    )
    status_token_file: Path | None = Field(
        None, description="read status_token from this file (a mounted Secret) at start-up"
    )
    log_level: str = "INFO"
    log_json: bool = Field(True, description="JSON log lines (False: plain text)")
    log_dir: Path | None = Field(
        None,
        description="also write debug/info/warning/error.log per service here, rotated daily "
        "at midnight UTC; None = stderr only",
    )
    log_retention_days: int = Field(
        14, ge=1, description="rotated log files kept per level (one per day)"
    )

    @model_validator(mode="after")
    def _status_token(self) -> Settings:
        # A token file that cannot be read must stop the service, not leave the API open.
        if self.status_token_file is not None:
            if self.status_token is not None:
                raise ValueError("set status_token or status_token_file, not both")
            try:
                text = self.status_token_file.read_text("utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"status_token_file {self.status_token_file}: {exc.strerror}"
                ) from None
            self.status_token = SecretStr(text)
        token = self.status_token.get_secret_value() if self.status_token else None
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"status token: at least {MIN_TOKEN_LENGTH} characters "
                "(openssl rand -hex 32 makes one)"
            )
        return self

    @property
    def outbox_dir(self) -> Path:
        return self.outbox or self.data_dir / "outbox"

    @property
    def memo_path(self) -> Path:
        """What the services remember of earlier runs (common/memo.py)."""
        return self.data_dir / "memo.sqlite3"

    @property
    def archive_dir(self) -> Path:
        return self.archive.dir or self.data_dir / "snapshots"

    @property
    def broker_configured(self) -> bool:
        """Whether a broker was named (environment or secrets), not merely defaulted."""
        return "amqp_url" in self.model_fields_set
