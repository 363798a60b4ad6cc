"""docker-compose.yml: valid Compose, and consistent in what the schema cannot see."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runtime.config import Settings
from tests.deploy.manifests import (
    COMPOSE,
    OPERATIONS,
    PORTS,
    clear_settings_environment,
    image_tag,
    load,
    port_option,
    run,
    settings_field,
    tool,
)

compose: dict[str, Any] = load(COMPOSE)
services: dict[str, dict[str, Any]] = compose["services"]
OURS = {name: s for name, s in services.items() if name != "rabbitmq"}
LONG_RUNNING = {name: s for name, s in OURS.items() if s.get("restart") != "no"}
HEALTH_URL = re.compile(r"http://(?:127\.0\.0\.1|localhost):(\d+)/healthz")


def test_it_validates_against_the_compose_specification() -> None:
    # check-jsonschema ships the compose-spec schema (vendor.compose-spec): no network.
    done = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_depends_on_names_defined_services_with_fitting_conditions() -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        targets = depends if isinstance(depends, dict) else {key: {} for key in depends}
        for target, how in targets.items():
            assert target in services, f"{name} depends on undefined {target}"
            condition = (how or {}).get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must run once"


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_configs_are_declared() -> None:
    for name, service in services.items():
        for config in service.get("configs", []):
            source = config if isinstance(config, str) else config["source"]
            assert source in compose.get("configs", {}), f"{name}: undeclared config {source}"


def test_rabbitmq_is_recent_enough_and_enables_the_plugins_the_docs_use() -> None:
    rabbitmq = services["rabbitmq"]
    tag = image_tag(rabbitmq["image"])
    assert tag not in {None, "latest"}
    # 3.10: at-least-once dead-lettering, the newest feature the topology uses.
    version = tuple(int(part) for part in tag.split("-")[0].split(".")[:2])  # type: ignore[union-attr]
    assert version >= (3, 10)
    [mount] = [c for c in rabbitmq["configs"] if c["target"] == "/etc/rabbitmq/enabled_plugins"]
    plugins = compose["configs"][mount["source"]]["content"]
    for plugin in ("rabbitmq_management", "rabbitmq_prometheus"):  # the UI, port 15692
        assert plugin in plugins
    assert plugins.strip().endswith("]."), "an Erlang term: [a,b]."


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_every_service_checks_health_on_the_port_it_listens_on(name: str) -> None:
    service = LONG_RUNNING[name]
    command = service["command"]
    port = port_option(command)
    assert port == PORTS[command[0]], f"{name} listens on {port}"
    test = service["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], "slim images have no curl: python -c urllib"
    [checked] = HEALTH_URL.findall(" ".join(test))
    assert int(checked) == port
    for mapping in service.get("ports", []):
        assert str(mapping).rsplit(":", 1)[1] == str(port), f"{name} publishes {mapping}"
        assert str(mapping).startswith("127.0.0.1:"), "status APIs stay on the host's loopback"


def test_the_fetcher_is_a_one_off_profile() -> None:
    fetcher = services["fetcher"]
    assert fetcher["profiles"] == ["fetcher"]
    assert fetcher["command"] == ["fetcher", "--once"]
    assert fetcher["restart"] == "no"


def test_the_publisher_keeps_its_state_and_the_archive_on_volumes() -> None:
    mounts = dict(v.split(":", 1)[::-1] for v in services["publisher"]["volumes"])
    assert mounts["/var/lib/oec-sync"] == "publisher-data"
    assert mounts["/var/lib/oec-sync/snapshots"] == "snapshots"


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_containers_are_hardened(name: str) -> None:
    service = OURS[name]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert image_tag(service["image"].split(":-", 1)[-1].rstrip("}")) not in {None, "latest"}


def test_environment_names_real_settings() -> None:
    for name, service in OURS.items():
        for variable in service["environment"]:
            if variable.startswith("OEC_SYNC_"):
                assert settings_field(variable), f"{name}: {variable} is no setting"


def test_no_secret_value_is_written_down() -> None:
    text = COMPOSE.read_text()
    for secret in ("OEC_SYNC_GITHUB_TOKEN", "SMTP_PASSWORD", "WEBHOOK_URL"):
        for line in text.splitlines():
            if secret in line:
                assert line.strip().endswith(":"), f"passed through, never set: {line}"
    assert "${RABBITMQ_PASSWORD:?" in text


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?error}`` with only RABBITMQ_PASSWORD set."""
    given = {"RABBITMQ_PASSWORD": "0123abcd"}

    def one(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if name in given:
            return given[name]
        assert operator == ":-", f"${{{name}}} must be set"
        return default

    return re.sub(r"\$\{(\w+)(:[-?])([^}]*)\}", one, value)


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_status_apis_listen_in_the_container_and_want_the_mounted_token(name: str) -> None:
    service = LONG_RUNNING[name]
    environment = service["environment"]
    # 0.0.0.0 inside, so the published port reaches it; published on the host's loopback.
    assert environment["OEC_SYNC_STATUS_HOST"] == "0.0.0.0"
    secrets = {s if isinstance(s, str) else s["source"] for s in service["secrets"]}
    token_file = environment["OEC_SYNC_STATUS_TOKEN_FILE"]
    assert token_file.startswith("/run/secrets/")
    secret = token_file.removeprefix("/run/secrets/")
    assert secret in secrets and secret in compose["secrets"]
    source = compose["secrets"][secret]["file"]
    assert Path(source).name in OPERATIONS.read_text(), "the docs say how to make the file"


def test_the_environment_is_accepted_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clear_settings_environment(monkeypatch)
    for name, value in services["publisher"]["environment"].items():
        if value is not None:  # null: passed through from the shell only when set there
            monkeypatch.setenv(name, interpolate(str(value)))
    token = tmp_path / "status-token"  # what Compose mounts at /run/secrets/status-token
    token.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setenv("OEC_SYNC_STATUS_TOKEN_FILE", str(token))
    settings = Settings()
    assert settings.status_token is not None
    assert settings.amqp_url.get_secret_value() == "amqp://oec-sync:0123abcd@rabbitmq:5672/%2F"
    mounts = dict(v.split(":", 1)[::-1] for v in services["publisher"]["volumes"])
    assert mounts[str(settings.data_dir)] == "publisher-data"
    assert mounts[str(settings.archive_dir)] == "snapshots"
    assert settings.oec_repo.parent == settings.data_dir
