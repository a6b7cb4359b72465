"""Retrying Bot Connector calls: 429 / 412 / 502 / 504 and refused connections, bounded.

Teams throttles bots per conversation and answers 429 (sometimes with ``Retry-After``); 412,
502 and 504 are the other answers Microsoft asks bots to retry with backoff. Anything else
fails at once. Every attempt has its own timeout, and all waits together stay within
``total_budget``, so a slow Teams cannot hold a job's effects for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from engine.errors import ConfigError

T = TypeVar("T")
RETRY_STATUSES = frozenset({412, 429, 502, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for connector retries (seconds unless named otherwise)."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_budget: float = 15.0  # all waits of one call together
    request_timeout: float = 10.0  # one attempt
    cooldown: float = 30.0  # after Teams failed, fail fast this long (the outbox catches up)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("retry attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.total_budget, self.cooldown) < 0:
            raise ConfigError("retry delays must not be negative")
        if self.request_timeout <= 0:
            raise ConfigError("request_timeout must be positive")


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in RETRY_STATUSES
    # Refused before anything was sent: safe to try again, even for a POST.
    return isinstance(exc, aiohttp.ClientConnectorError)


def delay_for(policy: RetryPolicy, attempt: int, exc: BaseException) -> float:
    """Honour ``Retry-After`` (seconds) when given, else exponential backoff; capped."""
    headers = getattr(exc, "headers", None)
    after = headers.get("Retry-After") if headers is not None else None
    if after is not None and after.strip().isdecimal():
        return min(float(after.strip()), policy.max_delay)
    return min(policy.base_delay * float(1 << min(attempt, 30)), policy.max_delay)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``call()`` until it succeeds, a failure is not retryable, or the bounds are reached."""
    waited = 0.0
    for attempt in range(policy.attempts):
        try:
            async with asyncio.timeout(policy.request_timeout):
                return await call()
        except Exception as exc:
            pause = delay_for(policy, attempt, exc)
            last = attempt == policy.attempts - 1
            if not retryable(exc) or last or waited + pause > policy.total_budget:
                raise
            waited += pause
            await sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")
