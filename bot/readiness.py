"""Readiness: ``/readyz`` is ready only while the store answers AND accepts writes.

A full disk (or a database refusing writes) shows first as a failed write: a tick that could
not save, a request whose handler hit the store. Any such failure turns readiness off; while
it is off, each ``/readyz`` tries one small real write (a unique idempotency key, so only
outages and starts leave rows behind; the sweep purges them) and turns ready again when it
lands. A start tries one too: a process started on a full disk is not ready from the first
``/readyz``, though its resume logged the refusal and went on, and its ticks may write nothing
(the leases of the process it replaced not yet run out). Every store failure a handler
meets becomes a 503 ``STORE_UNAVAILABLE`` that names neither the database nor its path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from uuid import uuid4

from aiohttp import web

from engine.errors import StoreError
from engine.job import OPEN
from engine.ports import JsonDoc

log = logging.getLogger("breakglass.app")
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def unavailable() -> web.Response:
    body = {"error": STORE_UNAVAILABLE, "detail": "the store cannot be used right now; retry"}
    return web.json_response(body, status=503, headers={"Retry-After": "5"})


class ProbedStore(Protocol):
    async def count_jobs(self) -> dict[str, int]: ...

    async def claim_key(self, key: str, result: JsonDoc, at: datetime) -> bool: ...


class Readiness:
    def __init__(self, store: ProbedStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.failed_since: datetime | None = None

    def store_failed(self) -> None:
        if self.failed_since is None:
            self.failed_since = self.clock()
            log.error("the store refused a write: not ready until it accepts one again")

    def store_worked(self) -> None:
        if self.failed_since is not None:
            log.info("the store accepts writes again: ready")
        self.failed_since = None

    async def check(self) -> dict[str, Any]:
        try:
            counts = await self.store.count_jobs()  # one GROUP BY, no documents read
        except Exception:  # readiness reports any failure, never raises
            return {"ready": False, "error": STORE_UNAVAILABLE}
        if self.failed_since is not None and not await self._probe_write():
            return {
                "ready": False,
                "error": STORE_UNAVAILABLE,
                "since": self.failed_since.isoformat(),
            }
        open_jobs = sum(n for state, n in counts.items() if state in OPEN)
        return {"ready": True, "open_jobs": open_jobs}

    async def probe(self) -> None:
        """At start: does the store accept a write? Not ready until it does."""
        if not await self._probe_write():
            self.store_failed()

    async def _probe_write(self) -> bool:
        try:
            await self.store.claim_key(f"readyz-probe:{uuid4()}", {"probe": True}, self.clock())
        except Exception:  # still refusing writes
            return False
        self.store_worked()
        return True

    async def watch(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Run a periodic round that writes (the tick); a store failure turns readiness off."""
        try:
            await work()
        except StoreError:
            self.store_failed()
            raise

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A handler meeting a store failure answers 503 STORE_UNAVAILABLE (no paths)."""
        try:
            return await handler(request)
        except StoreError:
            log.warning("%s %s: the store failed", request.method, request.path, exc_info=True)
            self.store_failed()
            return unavailable()
