from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from adapters.teams.retry import RetryPolicy, delay_for, retryable, with_retries
from engine.errors import ConfigError

POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=4.0, total_budget=5.0)


def http_error(status: int, retry_after: str | None = None) -> aiohttp.ClientResponseError:
    headers = CIMultiDict({"Retry-After": retry_after} if retry_after else {})
    info = aiohttp.RequestInfo(URL("http://127.0.0.1/"), "POST", CIMultiDictProxy(CIMultiDict()))
    return aiohttp.ClientResponseError(info, (), status=status, headers=CIMultiDictProxy(headers))


@pytest.mark.parametrize("status", [412, 429, 502, 503, 504])
def test_teams_throttling_and_transient_server_errors_are_retried(status: int) -> None:
    assert retryable(http_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
def test_other_answers_are_not(status: int) -> None:
    assert not retryable(http_error(status))


def test_retry_after_is_honoured_and_capped() -> None:
    assert delay_for(POLICY, 0, http_error(429, "2")) == 2.0
    assert delay_for(POLICY, 0, http_error(429, "120")) == POLICY.max_delay
    assert delay_for(POLICY, 0, http_error(429, "Wed, 21 Oct 2015 07:28:00 GMT")) == 0.5


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [delay_for(POLICY, n, http_error(502)) for n in range(5)] == [0.5, 1, 2, 4, 4]


class Flaky:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def pauses() -> tuple[list[float], Callable[[float], object]]:
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        seen.append(seconds)

    return seen, sleep


async def test_retries_until_success() -> None:
    seen, sleep = pauses()
    call = Flaky([http_error(429, "1"), http_error(502)])
    assert await with_retries(call, POLICY, sleep) == "ok"  # type: ignore[arg-type]
    assert seen == [1.0, 1.0]


async def test_gives_up_after_the_attempts() -> None:
    seen, sleep = pauses()
    call = Flaky([http_error(504) for _ in range(10)])
    with pytest.raises(aiohttp.ClientResponseError):
        await with_retries(call, POLICY, sleep)  # type: ignore[arg-type]
    assert call.calls == POLICY.attempts
    assert len(seen) == POLICY.attempts - 1


async def test_gives_up_when_the_budget_would_be_exceeded() -> None:
    seen, sleep = pauses()
    call = Flaky([http_error(429, "4") for _ in range(10)])
    with pytest.raises(aiohttp.ClientResponseError):
        await with_retries(call, POLICY, sleep)  # type: ignore[arg-type]
    assert sum(seen) <= POLICY.total_budget
    assert call.calls == 2


async def test_a_refusal_fails_at_once() -> None:
    seen, sleep = pauses()
    call = Flaky([http_error(403)])
    with pytest.raises(aiohttp.ClientResponseError):
        await with_retries(call, POLICY, sleep)  # type: ignore[arg-type]
    assert call.calls == 1
    assert seen == []


def test_policy_bounds_are_checked() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(request_timeout=0)
