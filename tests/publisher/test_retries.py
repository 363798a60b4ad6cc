"""GitHub answering badly: 5xx, rate limits, dropped connections, a POST that went through."""

from __future__ import annotations

import pytest
from github.GithubException import RateLimitExceededExceedsMaxWait
from urllib3.response import HTTPResponse

from common.gitrepo import branch_name
from services.publisher.model import PublishState
from services.publisher.retry import OecRetry, make_retry

from .conftest import World, real_files

OPENED, UP_TO_DATE, FAILED = PublishState.OPENED, PublishState.UP_TO_DATE, PublishState.FAILED
UPSTREAM_REPO = r"/repos/OpenExoplanetCatalogue/open_exoplanet_catalogue$"
SECONDARY = {
    "message": "You have exceeded a secondary rate limit. "
    "Please wait a few minutes before you try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}


def count(world: World, method: str, pattern: str) -> int:
    return sum(c.method == method and c.path.endswith(pattern) for c in world.github.calls)


def test_502_and_secondary_rate_limits_are_retried_and_succeed(world: World) -> None:
    files = real_files(3)
    world.github.fail("GET", UPSTREAM_REPO, 502, times=2)
    world.github.fail("POST", r"/pulls$", 403, body=SECONDARY, headers={"Retry-After": "7"})
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(world.now) + 30)}
    world.github.fail("GET", r"/pulls$", 403, body=SECONDARY, headers=reset)
    world.github.fail("PATCH", r"/pulls/\d+$", 429, body={"message": "slow down"})

    results = world.sink().publish(world.proposals(files), 0)

    assert [r.state for r in results] == [OPENED] * 3
    assert count(world, "GET", "oec-bot/open_exoplanet_catalogue") == 1
    assert count(world, "GET", "OpenExoplanetCatalogue/open_exoplanet_catalogue") == 3
    assert count(world, "POST", "/pulls") == 4
    assert len(world.github.pulls) == 3
    assert 7 in world.sleeps  # Retry-After
    assert 31 in world.sleeps  # until x-ratelimit-reset, +1 s
    assert not world.github.faults[:-1]  # every fault but the PATCH one was served

    # An update whose PATCH first gets a 429 is retried too.
    results = world.sink().publish([world.proposal(files[0], variant="9")], 0)
    assert [r.state for r in results] == [PublishState.UPDATED]
    assert count(world, "PATCH", "/pulls/1") == 2


def test_a_secondary_rate_limit_without_headers_waits_a_minute(world: World) -> None:
    world.github.fail("POST", r"/pulls$", 403, body=SECONDARY)
    results = world.sink().publish(world.proposals(real_files(1)), 0)
    assert [r.state for r in results] == [OPENED]
    assert 60 in world.sleeps


def test_a_dropped_connection_is_retried(world: World) -> None:
    world.github.fail("GET", r"^/user$", 0, drop=True)
    results = world.sink().publish(world.proposals(real_files(2)), 0)
    assert [r.state for r in results] == [OPENED] * 2
    assert count(world, "GET", "/user") == 2


def test_a_retried_post_that_went_through_opens_one_pull_request(world: World) -> None:
    files = real_files(2)
    # GitHub created the PR and then answered 502: the retried POST meets "already exists".
    world.github.fail("POST", r"/pulls$", 502, after_work=True)

    results = world.sink().publish(world.proposals(files), 0)

    assert [r.state for r in results] == [OPENED] * 2
    heads = [p["head_ref"] for p in world.github.pulls.values()]
    assert sorted(heads) == sorted(branch_name(f) for f in files)
    assert results[0].url and results[0].url.endswith("/pull/1")
    assert [r.state for r in world.sink().publish(world.proposals(files), 0)] == [UP_TO_DATE] * 2


def test_a_persistent_outage_fails_the_rest_without_hammering(world: World) -> None:
    files = real_files(4)
    world.github.fail("POST", r"/pulls$", 503, times=1000)

    results = world.sink().publish(world.proposals(files), 0)

    assert [r.state for r in results] == [FAILED] * 4
    assert results[0].error and "503" in results[0].error
    assert all("not attempted" in (r.error or "") for r in results[1:])
    assert count(world, "POST", "/pulls") == 7  # one system: 1 try + 6 retries, then stop
    world.github.faults.clear()
    pushes = world.fork_pushes()
    results = world.sink().publish(world.proposals(files), 0)
    assert [r.state for r in results] == [OPENED] * 4
    assert world.fork_pushes() == pushes  # the branches were pushed the first time


def test_github_unreachable_at_planning_fails_every_system_and_touches_nothing(
    world: World,
) -> None:
    world.github.fail("GET", UPSTREAM_REPO, 503, times=1000)
    results = world.sink().publish(world.proposals(real_files(3)), 0)
    assert [r.state for r in results] == [FAILED] * 3
    assert all("nothing published" in (r.error or "") for r in results)
    assert world.fork_pushes() == [] and world.github.writes() == []


def test_a_primary_rate_limit_reset_far_away_stops_the_run(world: World) -> None:
    far = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(2_000_000_000)}
    world.github.fail(
        "POST", r"/pulls$", 403, body={"message": "API rate limit exceeded for user"}, headers=far
    )
    results = world.sink().publish(world.proposals(real_files(3)), 0)
    assert [r.state for r in results] == [FAILED] * 3
    assert count(world, "POST", "/pulls") == 1
    assert world.sleeps == []


def _response(status: int, headers: dict[str, str]) -> HTTPResponse:
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=True)


def test_retry_waits_what_github_asks() -> None:
    sleeps: list[float] = []
    retry = make_retry(sleep=sleeps.append, clock=lambda: 1000.0)
    retry.sleep(_response(403, {"Retry-After": "12"}))
    retry.sleep(_response(429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1100"}))
    retry.sleep(_response(502, {"x-ratelimit-remaining": "10", "x-ratelimit-reset": "1100"}))
    assert sleeps == [12, 101]  # no history yet: a 502 waits no backoff
    with pytest.raises(RateLimitExceededExceedsMaxWait):
        retry.sleep(_response(403, {"Retry-After": "3600"}))


def test_retry_keeps_its_settings_across_attempts() -> None:
    sleeps: list[float] = []
    retry = make_retry(sleep=sleeps.append, backoff_factor=2.0)
    again = retry.increment(method="GET", url="/x", response=_response(502, {}))
    again = again.increment(method="GET", url="/x", response=_response(502, {}))
    assert isinstance(again, OecRetry)
    again.sleep(_response(502, {}))
    assert sleeps == [4.0]  # urllib3: factor * 2 ** (errors - 1)
    assert 429 in again.status_forcelist and "PATCH" in (again.allowed_methods or ())
