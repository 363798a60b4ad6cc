"""The YAML itself: no duplicate keys (which every loader silently merges), tidy layout."""

from __future__ import annotations

from tests.deploy.manifests import COMPOSE, K8S, run, tool

# yamllint's defaults, less the rules that fight Kubernetes and Compose conventions.
CONFIG = (
    "{extends: default, rules: {line-length: {max: 120}, document-start: disable,"
    " comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}"
)


def test_yamllint_finds_nothing() -> None:
    done = run(tool("yamllint"), "--strict", "-d", CONFIG, str(COMPOSE), str(K8S))
    assert done.returncode == 0, done.stdout + done.stderr
