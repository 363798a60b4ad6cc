"""HTTP retries for the GitHub API: PyGithub's own ``GithubRetry`` (a urllib3 ``Retry``),
extended by :class:`OecRetry`: 5xx, 429 and secondary-rate-limit 403s are retried honouring
``Retry-After`` and ``x-ratelimit-remaining``/``x-ratelimit-reset``; the sleep is injectable.
And which errors mean GitHub is unavailable for the rest of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from github import GithubException, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait, RateLimitExceededException
from urllib3 import Retry
from urllib3.response import BaseHTTPResponse

# Seconds: GitHub asks for at least a minute after a secondary rate limit without headers.
SECONDARY_RATE_WAIT = 60.0
# Seconds: a longer wait (a primary limit resetting in an hour) fails the rest of the run
# instead of blocking the publisher; those systems are retried next run.
MAX_RATE_LIMIT_WAIT = 900.0


class OecRetry(GithubRetry):
    """PyGithub's ``GithubRetry`` with the waits GitHub documents and an injectable sleep.

    On top of GithubRetry (5xx, and 403s that are rate limits): 429 is retried, PATCH is
    retried (editing a body is idempotent), and before every retry it waits for
    ``Retry-After`` if given, else until ``x-ratelimit-reset`` when ``x-ratelimit-remaining``
    is 0, else the exponential backoff (at least ``secondary_rate_wait`` after a secondary
    rate limit), as GitHub's REST documentation on rate limits asks. A wait longer than
    ``max_rate_limit_wait`` raises ``RateLimitExceededExceedsMaxWait`` instead of sleeping.
    """

    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        self._sleep_fn = sleep
        self._clock = clock
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        kwargs.setdefault(
            "allowed_methods", Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"}
        )
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> OecRetry:
        kw.setdefault("sleep", self._sleep_fn)
        kw.setdefault("clock", self._clock)
        return super().new(**kw)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        wait = self.get_backoff_time()
        if response is not None:
            after = self.get_retry_after(response) if self.respect_retry_after_header else None
            if after is not None:
                wait = after
            elif (reset := self._until_reset(response)) is not None:
                wait = reset
        limit = self.max_rate_limit_wait
        if limit is not None and wait > limit and response is not None:
            raise RateLimitExceededExceedsMaxWait(
                response.status, None, dict(response.headers), wait=wait
            )
        if wait > 0:
            self._sleep_fn(wait)

    def _until_reset(self, response: BaseHTTPResponse) -> float | None:
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if remaining != "0" or not reset or not reset.isdigit():
            return None
        # +1: the reset happens somewhere within that second.
        return max(0.0, int(reset) - self._clock()) + 1


def make_retry(
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    total: int = 6,
    backoff_factor: float = 1.0,
    secondary_rate_wait: float = SECONDARY_RATE_WAIT,
    max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
) -> OecRetry:
    """The retry policy of every GitHub call: ~1+2+4+8+16 s of backoff over 6 tries."""
    return OecRetry(
        sleep=sleep,
        clock=clock,
        total=total,
        backoff_factor=backoff_factor,
        secondary_rate_wait=secondary_rate_wait,
        max_rate_limit_wait=max_rate_limit_wait,
        # After the last try, return the response so PyGithub raises a GithubException that
        # carries the status, instead of a bare urllib3 MaxRetryError.
        raise_on_status=False,
    )


# Errors after which further calls in this run would only hammer an unavailable GitHub.
UNAVAILABLE = (
    RateLimitExceededException,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.RetryError,
)


def unavailable(exc: BaseException) -> bool:
    """GitHub is down or limiting us (retries already spent): stop calling it this run."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, GithubException) and (exc.status >= 500 or exc.status == 429)
