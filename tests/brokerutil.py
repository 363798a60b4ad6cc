"""Helpers for tests against a real RabbitMQ: reachability, private names, service processes.

Every test gets its own topology prefix (exchange and queue names), so tests on one broker
never see each other's messages, and deletes what it declared afterwards.

No broker: broker tests skip with the reason, unless ``OEC_SYNC_REQUIRE_BROKER=1`` (CI with a
broker), where they fail instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from common.bus.rabbitmq import connection_parameters, delete, topology_for
from common.config import Settings

REQUIRE_BROKER = os.environ.get("OEC_SYNC_REQUIRE_BROKER") == "1"
AMQP_URL = os.environ.get("OEC_SYNC_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def broker_problem(url: str = AMQP_URL) -> str | None:
    """None when a broker answers at ``url``, else why not."""
    try:
        params = pika.URLParameters(url)
        params.connection_attempts = 1
        params.socket_timeout = 3
        pika.BlockingConnection(params).close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        return f"no RabbitMQ at {url.split('@')[-1]}: {type(exc).__name__} {exc}"
    return None


def require_broker() -> None:
    problem = broker_problem()
    if problem is None:
        return
    if REQUIRE_BROKER:
        pytest.fail(f"OEC_SYNC_REQUIRE_BROKER=1 but {problem}")
    pytest.skip(f"{problem} (start one, or set OEC_SYNC_REQUIRE_BROKER=1 to fail instead)")


def unique_prefix(name: str) -> str:
    return f"test-{name[:24]}-{uuid.uuid4().hex[:8]}".replace("_", "-")


def broker_env(prefix: str, **extra: str) -> dict[str, str]:
    """Environment for settings and subprocesses: this test's names, fast timings."""
    return {
        "OEC_SYNC_AMQP_URL": AMQP_URL,
        "OEC_SYNC_BUS__PREFIX": prefix,
        "OEC_SYNC_BUS__DELIVERY_LIMIT": "3",
        "OEC_SYNC_BUS__RECONNECT_MAX_DELAY": "1",
        "OEC_SYNC_BUS__DEPTH_POLL_INTERVAL": "0.5",
        "OEC_SYNC_BUS__PUBLISH_TIMEOUT": "60",
        "OEC_SYNC_BUS__HEARTBEAT": "10",
        "OEC_SYNC_LOG_LEVEL": "INFO",
        **extra,
    }


def settings_for(prefix: str, **extra: str) -> Settings:
    saved = {k: os.environ.get(k) for k in broker_env(prefix, **extra)}
    os.environ.update(broker_env(prefix, **extra))
    try:
        return Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def blocking_channel(settings: Settings) -> tuple[pika.BlockingConnection, Any]:
    connection = pika.BlockingConnection(
        connection_parameters(settings.amqp_url, settings.bus, "test")
    )
    return connection, connection.channel()


def cleanup(settings: Settings) -> None:
    """Delete the test's queues and exchanges; waits for a broker that is coming back."""
    deadline = time.monotonic() + 30
    while True:
        try:
            connection, channel = blocking_channel(settings)
            with connection:
                delete(channel, topology_for(settings.bus))
            return
        except (pika.exceptions.AMQPError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def queue_depth(settings: Settings, queue: str) -> int:
    connection, channel = blocking_channel(settings)
    with connection:
        return int(channel.queue_declare(queue, passive=True).method.message_count)


def stream_events(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """(routing key, headers) of everything in the replay log, as the broker holds it."""
    connection, channel = blocking_channel(settings)
    events: list[tuple[str, dict[str, Any]]] = []
    with connection:
        channel.basic_qos(prefetch_count=500)
        for method, properties, _body in channel.consume(
            topology_for(settings.bus).stream,
            arguments={"x-stream-offset": "first"},
            inactivity_timeout=1.0,
        ):
            if method is None:
                break
            channel.basic_ack(method.delivery_tag)
            events.append((method.routing_key, properties.headers or {}))
        channel.cancel()
    return events


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


class ServiceProcess:
    """``oec-sync <service>`` in a subprocess, with its status API on a free port."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        token = env.get("OEC_SYNC_STATUS_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "oec-sync"), *args, "--port", str(self.port)],
            env={**os.environ, **env, "OEC_SYNC_STATUS_HOST": "127.0.0.1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> Any:
        """GET a route, with the status token when the service has one."""
        return http_json(self.url(path), headers=self.headers)

    def ready(self) -> bool:
        try:
            return bool(self.get("/readyz")["ready"])
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = 60) -> ServiceProcess:
        def check() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
            return self.ready()

        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye to the broker."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return int(self.process.returncode)

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def oec_sync(
    args: list[str], env: dict[str, str], timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run an ``oec-sync`` command to completion."""
    done = subprocess.run(
        [str(VENV_BIN / "oec-sync"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"oec-sync {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done
