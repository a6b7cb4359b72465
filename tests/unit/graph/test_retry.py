from datetime import UTC, datetime

from adapters.graph.config import RetryPolicy
from adapters.graph.retry import backoff, is_lost_outcome, is_retriable, retry_after

POLICY = RetryPolicy(base_delay=1.0, max_delay=8.0)


def test_backoff_doubles_with_equal_jitter_and_is_capped() -> None:
    assert [backoff(POLICY, n, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]
    assert [backoff(POLICY, n, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]


def test_retry_after_seconds_date_and_garbage() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}, now) == 30.0
    assert retry_after({"Retry-After": "Wed, 01 Jan 2025 11:00:00 GMT"}, now) == 0.0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None


def test_which_answers_are_retried() -> None:
    assert is_retriable(429, idempotent=False)
    assert is_retriable(503, idempotent=False)
    assert not is_retriable(504, idempotent=False)
    assert is_retriable(504, idempotent=True)
    assert not is_retriable(400, idempotent=True)
    assert not is_retriable(401, idempotent=True)


def test_gateway_errors_on_writes_have_unknown_outcome() -> None:
    assert is_lost_outcome(502, idempotent=False)
    assert is_lost_outcome(504, idempotent=False)
    assert not is_lost_outcome(503, idempotent=False)
    assert not is_lost_outcome(504, idempotent=True)
