"""Retrying Bot Connector calls: 429 / 412 / 502 / 503 / 504 and refused connections, bounded.

Teams throttles bots per conversation and answers 429 (sometimes with ``Retry-After``); 412,
502, 503 and 504 are the other answers Microsoft asks bots to retry with exponential backoff
("Status codes from bot conversational APIs", docs/teams.md §8). Anything else fails at once
(the waiting is ``adapters.retry``'s). Every attempt has its own timeout, and all waits
together stay within ``total_budget``, so a slow Teams cannot hold a job's effects for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp

from adapters.retry import Backoff, retry_after_of, retry_call
from engine.errors import ConfigError

T = TypeVar("T")
RETRY_STATUSES = frozenset({412, 429, 502, 503, 504})


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
        self.backoff  # noqa: B018  (building the shared rule checks attempts and delays)
        if self.cooldown < 0:
            raise ConfigError("retry delays must not be negative")
        if self.request_timeout <= 0:
            raise ConfigError("request_timeout must be positive")

    @property
    def backoff(self) -> Backoff:
        """The shared retry rule, without jitter, and no wait longer than ``max_delay``."""
        cap = self.max_delay
        return Backoff(self.base_delay, cap, self.attempts, self.total_budget, cap, jitter=False)


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in RETRY_STATUSES
    # Refused before anything was sent: safe to try again, even for a POST.
    return isinstance(exc, aiohttp.ClientConnectorError)


def asked_wait(exc: BaseException) -> float | None:
    """The ``Retry-After`` of a connector answer, in seconds (delta or HTTP-date), or None."""
    return retry_after_of(getattr(exc, "headers", None), datetime.now(UTC))


def delay_for(policy: RetryPolicy, attempt: int, exc: BaseException) -> float:
    """Wait after the 0-based ``attempt``: doubling backoff, never below ``Retry-After``; capped."""
    return policy.backoff.wait(attempt + 1, asked_wait(exc))


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``call()`` until it succeeds, a failure is not retryable, or the bounds are reached."""

    async def attempt() -> T:
        async with asyncio.timeout(policy.request_timeout):
            return await call()

    return await retry_call(
        attempt, policy.backoff, retryable=retryable, asked=asked_wait, sleep=sleep
    )
