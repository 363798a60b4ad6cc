"""The one settings class: everything configurable, from the environment (``OEC_SYNC_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

NASA_URL = (
    "https://exoplanetarchive.ipac.caltech.edu/TAP/sync?query=select+*+from+pscomppars&format=csv"
)
EU_URL = "https://exoplanet.eu/catalog/csv/"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OEC_SYNC_",
        env_nested_delimiter="__",
        secrets_dir=None,
        extra="ignore",
    )

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/%2F")
    oec_repo: Path = Path("open_exoplanet_catalogue")
    data_dir: Path = Path(".oec-sync")
    outbox: Path | None = Field(
        None, description="where PR drafts go without a GitHub token; default DATA_DIR/outbox"
    )
    max_prs: int = Field(20, ge=0, description="systems proposed per run; 0 means no cap")
    nasa_url: str = NASA_URL
    eu_url: str = EU_URL
    position_radius_arcsec: float = 5.0

    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_upstream: str = "OpenExoplanetCatalogue/open_exoplanet_catalogue"
    github_fork: str | None = None

    @property
    def outbox_dir(self) -> Path:
        return self.outbox or self.data_dir / "outbox"
