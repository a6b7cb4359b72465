"""Receipt ids: unique within a process (a counter) and across restarts (the clock)."""

from __future__ import annotations

import itertools
import time

_counter = itertools.count(1)


def receipt_id(prefix: str, job_id: str) -> str:
    """``<prefix>_<job>_<ns-hex>_<n>``, e.g. ``tr_`` for tool and ``gr_`` for model receipts."""
    return f"{prefix}_{job_id}_{time.time_ns():x}_{next(_counter)}"
