"""Every ``oec-sync`` command line in the deployment files and the runbook exists, flags too."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer

from services.cli import app
from tests.deploy.manifests import (
    BASE,
    COMPOSE,
    JOBS,
    OPERATIONS,
    load,
    load_all,
)

ROOT = typer.main.get_command(app)


def command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after ``oec-sync``) for every command the files run."""
    lines: list[tuple[str, list[str]]] = []
    for name, service in load(COMPOSE)["services"].items():
        if "entrypoint" not in service and name != "rabbitmq":
            lines.append((f"compose {name}", list(service["command"])))
    for path in [*BASE.glob("*.yaml"), *JOBS.glob("*.yaml")]:
        for doc in load_all(path):
            spec = doc.get("spec", {})
            spec = spec.get("jobTemplate", {}).get("spec", spec)
            for container in spec.get("template", {}).get("spec", {}).get("containers", []):
                if "command" not in container:
                    lines.append((f"{path.name} {container['name']}", container["args"]))
    # The runbook's shell blocks: `oec-sync ...`, `kubectl exec ... -- oec-sync ...` and
    # `docker compose run --rm ops|fetcher ...`.
    pattern = re.compile(r"(?:^|-- )oec-sync( [^|;&#`]*)?$|run --rm (?:ops|fetcher)( [^|;&#`]*)?$")
    in_shell = False
    for number, text in enumerate(OPERATIONS.read_text().splitlines(), 1):
        if text.strip().startswith("```"):
            in_shell = text.strip() == "```sh"
            continue
        found = pattern.search(text.strip()) if in_shell else None
        if found and "--entrypoint" not in text:
            tail = (found.group(1) or found.group(2) or "").replace("<", "").replace(">", "")
            lines.append((f"operations.md:{number}", shlex.split(tail) or ["--help"]))
    return lines


LINES = command_lines()


def resolve(argv: list[str]) -> tuple[Any, list[str]]:
    """The (sub-)command an argv names, and the arguments left for it."""
    # Duck-typed: typer ships its own click, whose groups are no click.Group.
    command: Any = ROOT
    rest = list(argv)
    while rest and rest[0] in getattr(command, "commands", {}):
        command = command.commands[rest.pop(0)]
    return command, rest


@pytest.mark.parametrize(("where", "argv"), LINES, ids=[w for w, _ in LINES])
def test_the_command_and_its_options_exist(where: str, argv: list[str]) -> None:
    if argv[0].startswith("-"):
        command, rest = ROOT, argv
    else:
        command, rest = resolve(argv)
        assert command is not ROOT, f"{where}: `oec-sync {argv[0]}` is no command"
    known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    known.add("--help")
    for token in rest:
        if token.startswith("--"):
            assert token.split("=", 1)[0] in known, f"{where}: {' '.join(argv)}"


def test_the_runbook_was_scanned() -> None:
    assert sum(w.startswith("operations.md") for w, _ in LINES) >= 10
