"""The model calls in flight (``CallSlots``), bounded per job and in all, and the answer a
call over a bound gets at once (429 ``TOO_MANY_CALLS`` with ``Retry-After``).

Apart from :mod:`bot.model_proxy` because the bound is taken before a call's body is read
and holds no part of the call: a counter, and its one refusal.
"""

from __future__ import annotations

import logging
from collections import Counter

from aiohttp import hdrs, web

from bot.proxy_answers import error

log = logging.getLogger("breakglass.model_proxy")
# A call refused for too many in flight may come back after this long: the calls ahead of
# it are model turns, seconds each.
BUSY_RETRY_AFTER_SECONDS = 1


class CallSlots:
    """Model calls in flight, per job and in all. A call over either bound is refused at
    once, never queued: a waiting call would hold its connection and buffers all the same."""

    def __init__(self, per_job: int, total: int) -> None:
        self.per_job = per_job
        self.total = total
        self._jobs: Counter[str] = Counter()
        self._taken = 0

    def take(self, job_id: str) -> str:
        """Takes a slot for a call of ``job_id`` and returns "" (give it back when the
        call ends); or takes none and names the bound the call is over: "job" or "proxy"."""
        if self._jobs[job_id] >= self.per_job:
            return "job"
        if self._taken >= self.total:
            return "proxy"
        self._jobs[job_id] += 1
        self._taken += 1
        return ""

    def give_back(self, job_id: str) -> None:
        self._taken -= 1
        self._jobs[job_id] -= 1
        if self._jobs[job_id] <= 0:
            del self._jobs[job_id]

    def in_flight(self, job_id: str | None = None) -> int:
        return self._taken if job_id is None else self._jobs[job_id]


def busy(job_id: str, bound: str, limit: int) -> web.Response:
    """Too many calls in flight: refused at once, nothing read or forwarded."""
    log.info(
        "model call refused: TOO_MANY_CALLS (%s: %d in flight for the %s)", job_id, limit, bound
    )
    where = "for this job" if bound == "job" else "through this proxy"
    message = f"too many model calls in flight {where} (at most {limit}); retry when one ends"
    response = error(429, "TOO_MANY_CALLS", message)
    response.headers[hdrs.RETRY_AFTER] = str(BUSY_RETRY_AFTER_SECONDS)
    return response
