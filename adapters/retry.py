"""One retry rule for every outside call, and one ``Retry-After`` parser (ADR 0006).

tenacity runs the loop; what is ours is the policy: exponential backoff (optionally with
"equal jitter"), never sooner than the server's ``Retry-After``, a bound on attempts and a time
budget that gives up at once when the next wait would cross it. Sleep, clock and randomness are
parameters so tests never wait and never race the machine.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from engine.errors import ConfigError

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
Sleep = Callable[[float], Awaitable[None]]
# No server may park a call of ours longer than a day, whatever its header says.
MAX_RETRY_AFTER = 86_400.0
_MAX_EXPONENT = 60  # 2**60 times any delay is past every cap: stop doubling there


def parse_retry_after(header: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` value asks for (RFC 9110 §10.2.3), or None when unreadable.

    Accepts delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``,
    or its obsolete RFC 850 and asctime forms, measured from ``now``, which must be
    timezone-aware). A date in the past is 0; every answer is clamped to ``MAX_RETRY_AFTER``.
    Negative or fractional seconds and anything unreadable are None.
    """
    value = (header or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # the asctime form names no zone: HTTP-dates are always UTC
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def retry_after_of(headers: Mapping[str, Any] | None, now: datetime) -> float | None:
    """``parse_retry_after`` of a header mapping's ``Retry-After`` (any case; a list's first)."""
    for name, value in (headers or {}).items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            return parse_retry_after(raw if isinstance(raw, str) else None, now)
    return None


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait between attempts (seconds unless named otherwise)."""

    base_delay: float
    max_delay: float
    attempts: int = 1  # for ``retry_call``; an outbox retries until delivered
    total_budget: float = math.inf  # all attempts and waits of one call together
    retry_after_cap: float = MAX_RETRY_AFTER  # the most of a server's Retry-After we honour
    _: KW_ONLY
    jitter: bool = True  # "equal jitter": half of each step fixed, half random

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("retry attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.total_budget, self.retry_after_cap) < 0:
            raise ConfigError("retry delays must not be negative")

    def step(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The backoff after the 1-based ``attempt`` failed: doubling from ``base_delay``."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
        return ceiling / 2 + rand() * ceiling / 2 if self.jitter else ceiling

    def wait(
        self, attempt: int, asked: float | None, rand: Callable[[], float] = random.random
    ) -> float:
        """The backoff, but never sooner than what the server asked for (within the cap)."""
        floor = min(asked, self.retry_after_cap) if asked is not None else 0.0
        return max(floor, self.step(attempt, rand))


def outbox_delay(backoff: Backoff, attempts: int, asked: float | None = None) -> timedelta:
    """When to try again a queued delivery that already failed ``attempts`` times."""
    return timedelta(seconds=backoff.wait(attempts + 1, asked))


class RetryLater(Exception, Generic[E]):
    """Raised by an attempt: ``error`` may pass if tried again, after ``asked`` seconds if set."""

    def __init__(self, error: E, asked: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.asked = asked


def _is_retry_later(exc: BaseException) -> bool:
    return isinstance(exc, RetryLater)


def _asked_of(exc: BaseException) -> float | None:
    return exc.asked if isinstance(exc, RetryLater) else None


async def retry_call(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retryable: Callable[[BaseException], bool] = _is_retry_later,
    asked: Callable[[BaseException], float | None] = _asked_of,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    before_sleep: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``call()`` until it succeeds, raises what ``retryable`` refuses, or the bounds are hit.

    The last failure is raised as it is. Time spent is the clock's, and never less than the
    waits asked for (a test's instant sleep does not move the clock).
    """
    started = clock()

    def failure(state: RetryCallState) -> BaseException:
        exc = state.outcome.exception() if state.outcome else None
        assert exc is not None, "tenacity waits only after a failed attempt"
        return exc

    def wait(state: RetryCallState) -> float:
        return backoff.wait(state.attempt_number, asked(failure(state)), rand)

    def stop(state: RetryCallState) -> bool:
        spent = max(clock() - started, state.idle_for)
        over_budget = spent + state.upcoming_sleep > backoff.total_budget
        return state.attempt_number >= backoff.attempts or over_budget

    def announce(state: RetryCallState) -> None:
        if before_sleep is not None:
            before_sleep(failure(state), state.upcoming_sleep)

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=announce,
        reraise=True,
    )
    return await retrying(call)
