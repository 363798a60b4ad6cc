"""The status API every service serves: /healthz, /readyz, /status, /metrics.

Routes read a :class:`~common.telemetry.StatusSnapshot` that the bus (and the service)
update; they never touch the broker connection, so a hung broker cannot hang a health check.
uvicorn runs in a daemon thread of the service process (:class:`StatusServer`).

Access: the API listens on ``OEC_SYNC_STATUS_HOST`` (127.0.0.1 unless set). With a status
token configured (``OEC_SYNC_STATUS_TOKEN`` or ``OEC_SYNC_STATUS_TOKEN_FILE``) every route
asks for ``Authorization: Bearer <token>`` — deny by default, so a route added later is
covered — except the probes' ``/healthz``, ``/readyz`` and ``/metrics`` and the routes a
service opens itself (``app.state.open_paths``: the indexer's GitHub webhook, which GitHub
signs with its own HMAC instead).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from common.config import Settings
from common.telemetry import BusMetrics, StatusSnapshot

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers


# Reads `Authorization: Bearer ...`; the guard below decides (auto_error=False), so that the
# open routes and an API without a token let a request without the header through.
BEARER = HTTPBearer(
    auto_error=False, scheme_name="status token", description="OEC_SYNC_STATUS_TOKEN"
)


def bearer_guard(token: SecretStr | None) -> Callable[..., Awaitable[None]]:
    """The dependency every route of a status API has (see the module docstring)."""
    expected = token.get_secret_value().encode() if token is not None else None

    async def guard(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> None:
        if expected is None or request.url.path in request.app.state.open_paths:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        # Constant time: how long a refusal takes says nothing about how close a guess was.
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                "this route needs Authorization: Bearer <the status token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard


def create_app(
    snapshot: StatusSnapshot, metrics: BusMetrics, title: str, token: SecretStr | None = None
) -> FastAPI:
    """The shared routes; a service adds its own to the returned app. With ``token``, every
    route but ``app.state.open_paths`` asks for it."""
    app = FastAPI(
        title=title,
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(bearer_guard(token))],
    )
    app.state.open_paths = set(OPEN_PATHS)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Alive: the process answers. Never looks at the broker."""
        return {"status": "ok", "service": snapshot.service}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready: connected to the broker and consuming (a publisher-only process: connected)."""
        ready = snapshot.ready()
        body = {"ready": ready, "service": snapshot.service}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/status")
    def status() -> dict[str, Any]:
        """Broker connection, last message, queue depths, recent runs (needs the token)."""
        return snapshot.as_dict()

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class StatusServer:
    """uvicorn serving ``app`` from a daemon thread; ``port`` 0 picks a free port."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="status-api", daemon=True)

    def start(self, timeout: float = 10.0) -> StatusServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the status API did not start (is the port taken?)")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        servers = self.server.servers
        return int(servers[0].sockets[0].getsockname()[1]) if servers else 0

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


class Service:
    """What every service process has: JSON logs, a snapshot, metrics and the status API."""

    def __init__(
        self,
        name: str,
        log_level: str = "INFO",
        json_logs: bool = True,
        log_dir: Path | None = None,
        log_retention_days: int = 14,
        token: SecretStr | None = None,
    ) -> None:
        from common.logging import configure

        configure(name, log_level, json_logs, log_dir, log_retention_days)
        self.name = name
        self.snapshot = StatusSnapshot(name)
        self.metrics = BusMetrics()
        self.token = token
        self.app = create_app(self.snapshot, self.metrics, f"OEC Sync {name}", token)
        self.server: StatusServer | None = None

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> Service:
        """A service logging as the settings say, its API guarded by the status token."""
        return cls(
            name,
            settings.log_level,
            settings.log_json,
            settings.log_dir,
            settings.log_retention_days,
            settings.status_token,
        )

    def serve(self, host: str, port: int | None) -> None:
        """Start the status API; ``None`` serves none (a one-shot job)."""
        if port is None:
            return
        if self.token is None and not _loopback(host):
            log.warning(
                "the status API listens on %s without a token: /status and the run reports "
                "are open to anyone who reaches the port (set OEC_SYNC_STATUS_TOKEN_FILE)",
                host,
            )
        self.server = StatusServer(self.app, host, port).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere
