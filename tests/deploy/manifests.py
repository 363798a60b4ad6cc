"""Reading the deployment files, and the checks both compose and Kubernetes tests share."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from runtime.config import Settings
from tests.paths import REPO

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
K8S = REPO / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
JOBS = K8S / "jobs"
OPERATIONS = REPO / "docs" / "operations.md"

# Status API ports by role; the Dockerfile EXPOSEs them and every manifest uses them.
PORTS = {"indexer": 8081, "merger": 8082, "publisher": 8083}
IMAGE_UID = 10001

Manifest = dict[str, Any]


def load_all(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def load(path: Path) -> Manifest:
    [doc] = load_all(path)
    return doc


def tool(name: str) -> str:
    """The path of a validator, from PATH or beside this Python; skips the test if absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install the dev extras / apt-get install)")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def clear_settings_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave Settings only what the test sets, nothing from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("OEC_SYNC_"):
            monkeypatch.delenv(name)


def settings_field(variable: str) -> bool:
    """Whether an ``OEC_SYNC_*`` variable names a field of Settings (``__`` nests)."""
    assert variable.startswith("OEC_SYNC_"), variable
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("OEC_SYNC_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if depth < len(parts) - 1:
            nested = field.annotation
            if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
                return False
            model = nested
    return True


def port_option(args: list[str]) -> int | None:
    """The value of ``--port`` in an ``oec-sync`` command line."""
    for flag, value in itertools.pairwise(args):
        if flag == "--port":
            return int(value)
    return None


def documented_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, from the ``kubectl create secret generic`` commands of the docs."""
    text = OPERATIONS.read_text().replace("\\\n", " ")
    secrets: dict[str, set[str]] = {}
    for line in text.splitlines():
        created = re.search(r"kubectl (?:-n \S+ )?create secret generic ([a-z0-9-]+)", line)
        if created:
            keys = re.findall(r"--from-(?:literal|file)=([A-Za-z0-9._-]+)=", line)
            secrets.setdefault(created.group(1), set()).update(keys)
    return secrets


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None (a digest counts as pinned: returns it)."""
    if "@" in image:
        return image.split("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def walk(node: object) -> Iterator[tuple[str, object]]:
    """Every (key, value) pair in a nested document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)
