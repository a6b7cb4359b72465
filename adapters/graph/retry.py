"""Retry decisions as plain functions: which answers to retry, and how long to wait.

Kept free of I/O so the rules can be read and tested on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from adapters.graph.config import RetryPolicy

# Throttled or unavailable: Graph did not process the request, so any method may be resent.
RETRY_ANY_METHOD = frozenset({429, 503})
# The gateway gave up waiting: the request may have been applied. Resend reads only.
RETRY_READS_ONLY = frozenset({502, 504})


def backoff(policy: RetryPolicy, attempt: int, rand: Callable[[], float]) -> float:
    """Exponential backoff with "equal jitter" for 1-based ``attempt``: half fixed, half random."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_lost_outcome(status: int, idempotent: bool) -> bool:
    """True when a write got an answer that does not say whether it was applied."""
    return not idempotent and status in RETRY_READS_ONLY


def is_retriable(status: int, idempotent: bool) -> bool:
    return status in RETRY_ANY_METHOD or (idempotent and status in RETRY_READS_ONLY)
