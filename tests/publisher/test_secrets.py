"""The token reaches GitHub and git, and nothing else: no log, error, report or file."""

from __future__ import annotations

import base64
import logging
import subprocess

import pytest
from pydantic import SecretStr

from common.redaction import REDACTOR
from services.publisher.model import PublishState
from services.publisher.plan import render_plan
from services.publisher.repos import git_environment

from .conftest import World, real_files


def test_the_token_is_in_no_log_error_report_or_file(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # PyGithub logs every request and response at DEBUG
    token = world.token
    echo = f"Bad request; you sent Authorization: token {token}"
    # A server that echoes what it was sent, in a failure and in a retried error.
    world.github.fail("POST", r"/pulls$", 422, body={"message": echo})
    world.github.fail("GET", r"/pulls$", 502, body={"message": echo})
    files = real_files(3)

    sink = world.sink()
    plan_text = render_plan(sink.plan(world.proposals(files), 2))
    first = world.sink().publish(world.proposals(files), 2)
    world.github.fail("PATCH", r"/pulls/\d+$", 500, body={"message": echo}, times=100)
    second = world.sink().publish([world.proposal(files[1], variant="5")], 0)

    # The run did talk to GitHub with the token, and did hit the echoing failures ...
    assert all(c.headers.get("Authorization") == f"token {token}" for c in world.github.calls)
    assert [r.state for r in first] == [
        PublishState.FAILED,
        PublishState.OPENED,
        PublishState.QUEUED,
    ]
    assert [r.state for r in second] == [PublishState.FAILED]
    assert "***" in (first[0].error or "") and "***" in caplog.text

    # ... and the token is nowhere a person or a log shipper could read it.
    out, err = capfd.readouterr()
    texts = {
        "logs": caplog.text,
        "log messages": "\n".join(r.getMessage() for r in caplog.records),
        "stdout": out,
        "stderr": err,
        "results": "\n".join(r.model_dump_json() for r in [*first, *second]),
        "plan": plan_text,
        "sink": repr(vars(sink)),
    }
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    for where, text in texts.items():
        assert token not in text, where
        assert basic not in text, where
    for path in [*world.data.rglob("*"), *world.root.glob("*.log")]:
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_git_gets_the_token_from_a_helper_not_from_config_or_urls(world: World) -> None:
    token = SecretStr("ghp_" + "x" * 36)
    env = git_environment(token)
    # The only place the token is: the variable the helper reads.
    assert [k for k, v in env.items() if token.get_secret_value() in v] == ["OECSYNC_GIT_TOKEN"]
    done = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\npath=oec-bot/open_exoplanet_catalogue.git\n\n",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(world.root), **env},
        check=True,
    )
    assert f"password={token.get_secret_value()}" in done.stdout
    assert "username=x-access-token" in done.stdout
    assert git_environment(None) == {"GIT_TERMINAL_PROMPT": "0"}


def test_redactor_covers_basic_auth_forms_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    REDACTOR.add("s3cr3t-value")
    REDACTOR.install()
    basic = base64.b64encode(b"x-access-token:s3cr3t-value").decode()
    log = logging.getLogger("oec_sync.publisher.github")
    with caplog.at_level(logging.DEBUG):
        log.info("header Basic %s", basic)
        try:
            raise RuntimeError("boom s3cr3t-value")
        except RuntimeError:
            log.exception("failed")
    assert "s3cr3t-value" not in caplog.text and basic not in caplog.text
    assert "header Basic ***" in caplog.text and "RuntimeError: boom ***" in caplog.text
