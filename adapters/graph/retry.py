"""Which Graph answers may be retried, as plain functions (the waiting is ``adapters.retry``).

Kept free of I/O so the rules can be read and tested on their own.
"""

from __future__ import annotations

# Throttled or unavailable: Graph did not process the request, so any method may be resent.
RETRY_ANY_METHOD = frozenset({429, 503})
# The gateway gave up waiting: the request may have been applied. Resend reads only.
RETRY_READS_ONLY = frozenset({502, 504})


def is_lost_outcome(status: int, idempotent: bool) -> bool:
    """True when a write got an answer that does not say whether it was applied."""
    return not idempotent and status in RETRY_READS_ONLY


def is_retriable(status: int, idempotent: bool) -> bool:
    return status in RETRY_ANY_METHOD or (idempotent and status in RETRY_READS_ONLY)
