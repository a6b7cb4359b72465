from adapters.graph.config import RetryPolicy
from adapters.graph.retry import is_lost_outcome, is_retriable

POLICY = RetryPolicy(base_delay=1.0, max_delay=8.0)


def test_backoff_doubles_with_equal_jitter_and_is_capped() -> None:
    step = POLICY.backoff.step
    assert [step(n, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]
    assert [step(n, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]


def test_a_long_retry_after_is_honoured_in_full() -> None:
    assert POLICY.backoff.wait(1, 3600.0, lambda: 0.0) == 3600.0


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
