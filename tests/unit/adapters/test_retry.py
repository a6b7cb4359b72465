"""The one ``Retry-After`` parser and the one retry loop (``adapters/retry.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.retry import (
    MAX_RETRY_AFTER,
    Backoff,
    RetryLater,
    outbox_delay,
    parse_retry_after,
    retry_after_of,
    retry_call,
)
from engine.errors import ConfigError

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), (" 0 ", 0.0), ("120", 120.0)])
def test_delta_seconds(header: str, seconds: float) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_http_date_in_the_future_counts_from_now() -> None:
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", NOW) == 30.0


def test_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", NOW) == 0.0


def test_obsolete_http_date_forms_are_read_too() -> None:
    # RFC 9110 §5.6.7: recipients accept the RFC 850 and asctime forms as well.
    assert parse_retry_after("Wednesday, 01-Jan-25 12:01:00 GMT", NOW) == 60.0
    assert parse_retry_after("Wed Jan  1 12:02:00 2025", NOW) == 120.0  # asctime: always UTC


@pytest.mark.parametrize(
    "header", [None, "", "soon", "-5", "1.5", "٣", "0x10", "Wed, 99 Foo 2025 12:00:00 GMT"]
)
def test_garbage_is_none(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


def test_huge_values_are_clamped() -> None:
    assert parse_retry_after("9" * 400, NOW) == MAX_RETRY_AFTER
    assert parse_retry_after("Fri, 01 Jan 9999 00:00:00 GMT", NOW) == MAX_RETRY_AFTER


def test_header_lookup_ignores_case_and_takes_a_lists_first_value() -> None:
    assert retry_after_of({"retry-after": "3"}, NOW) == 3.0
    assert retry_after_of({"Retry-After": ["4", "9"]}, NOW) == 4.0
    assert retry_after_of({"Other": "4"}, NOW) is None
    assert retry_after_of(None, NOW) is None


def test_wait_is_the_backoff_but_never_below_what_was_asked_within_the_cap() -> None:
    policy = Backoff(base_delay=1.0, max_delay=4.0, retry_after_cap=10.0, jitter=False)
    assert [policy.wait(n, None) for n in (1, 2, 3, 4, 100_000)] == [1, 2, 4, 4, 4]
    assert policy.wait(1, 7.0) == 7.0
    assert policy.wait(3, 0.0) == 4.0
    assert policy.wait(1, 3600.0) == 10.0


def test_outbox_delay_counts_earlier_attempts() -> None:
    policy = Backoff(base_delay=5.0, max_delay=600.0, jitter=False)
    assert outbox_delay(policy, 0) == timedelta(seconds=5)
    assert outbox_delay(policy, 3) == timedelta(seconds=40)
    assert outbox_delay(policy, 50) == timedelta(minutes=10)
    assert outbox_delay(policy, 0, asked=90.0) == timedelta(seconds=90)


def test_policy_bounds_are_checked() -> None:
    with pytest.raises(ConfigError):
        Backoff(base_delay=1.0, max_delay=1.0, attempts=0)
    with pytest.raises(ConfigError):
        Backoff(base_delay=-1.0, max_delay=1.0)


class Script:
    """An attempt that fails with the given exceptions, then answers "ok"; records sleeps."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.slept: list[float] = []

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


POLICY = Backoff(base_delay=1.0, max_delay=8.0, attempts=4, total_budget=10.0, jitter=False)


async def test_retries_until_success_waiting_what_was_asked() -> None:
    script = Script(RetryLater(ValueError("busy"), asked=3.0), RetryLater(ValueError("busy")))
    assert await retry_call(script, POLICY, sleep=script.sleep) == "ok"
    assert script.slept == [3.0, 2.0]


async def test_a_failure_that_is_not_retryable_is_raised_at_once() -> None:
    script = Script(KeyError("no"))
    with pytest.raises(KeyError):
        await retry_call(script, POLICY, sleep=script.sleep)
    assert (script.calls, script.slept) == (1, [])


async def test_gives_up_after_the_attempts_with_the_last_failure() -> None:
    script = Script(*(RetryLater(ValueError(str(n))) for n in range(10)))
    with pytest.raises(RetryLater) as caught:
        await retry_call(script, POLICY, sleep=script.sleep)
    assert str(caught.value.error) == "3"
    assert (script.calls, script.slept) == (4, [1.0, 2.0, 4.0])


async def test_gives_up_at_once_when_the_next_wait_would_cross_the_budget() -> None:
    script = Script(*(RetryLater(ValueError("busy"), asked=6.0) for _ in range(10)))
    with pytest.raises(RetryLater):
        await retry_call(script, POLICY, sleep=script.sleep)
    assert (script.calls, script.slept) == (2, [6.0])


async def test_the_budget_reads_the_injected_clock() -> None:
    ticks = iter([0.0, 9.5])  # the first attempt took 9.5 s of the 10 s budget
    script = Script(RetryLater(ValueError("busy")))
    with pytest.raises(RetryLater):
        await retry_call(script, POLICY, sleep=script.sleep, clock=lambda: next(ticks))
    assert (script.calls, script.slept) == (1, [])


async def test_before_sleep_sees_each_failure_and_wait() -> None:
    seen: list[tuple[str, float]] = []
    script = Script(RetryLater(ValueError("a")), RetryLater(ValueError("b")))
    await retry_call(
        script,
        POLICY,
        sleep=script.sleep,
        before_sleep=lambda exc, wait: seen.append((str(exc), wait)),
    )
    assert seen == [("a", 1.0), ("b", 2.0)]
