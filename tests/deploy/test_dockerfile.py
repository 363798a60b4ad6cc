"""The Dockerfile: lint-clean, non-root, and in step with the manifests that run it."""

from __future__ import annotations

import re

from tests.deploy.manifests import DOCKERFILE, IMAGE_UID, PORTS, run, tool

dockerfile = DOCKERFILE.read_text()
instructions = [
    line.split(None, 1)
    for line in re.sub(r"\\\n", " ", dockerfile).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def last(instruction: str) -> str:
    return [args for name, args in instructions if name == instruction][-1]


def test_hadolint_finds_nothing() -> None:
    done = run(tool("hadolint"), str(DOCKERFILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_it_runs_oec_sync_as_a_fixed_non_root_user() -> None:
    assert last("FROM").startswith("python:3.11-slim")
    assert last("USER") == f"{IMAGE_UID}:{IMAGE_UID}"
    assert f"ARG UID={IMAGE_UID}" in dockerfile
    assert last("ENTRYPOINT") == '["oec-sync"]'


def test_git_is_installed_for_the_indexer_and_publisher() -> None:
    installs = " ".join(args for name, args in instructions if name == "RUN")
    assert re.search(r"apt-get install [^&]*\bgit\b", installs)


def test_it_exposes_the_status_ports() -> None:
    assert sorted(map(int, last("EXPOSE").split())) == sorted(PORTS.values())
