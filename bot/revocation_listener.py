"""Other replicas' revocations, heard here as they commit (PostgreSQL ``LISTEN``,
``adapters.store.notify``): the token is refused in this process at once and its job's agent
calls in flight are stopped (``JobService.refuse_here``), without waiting for the next call's
store check, which stays the authority.

A lost connection is listened on again after a second. What was revoked meanwhile was
announced to nobody here (a ``NOTIFY`` is not queued for a session that is not listening),
so each time it listens again, the tokens of the open jobs this process knows are read again
from the store (docs/notes/store-connections.md)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot import metrics
from engine.errors import StoreError
from engine.job import OPEN

if TYPE_CHECKING:
    from bot.service import JobService

log = logging.getLogger("breakglass.store")


class RevocationListener:
    def __init__(self, service: JobService) -> None:
        self.service = service
        self.ready = asyncio.Event()  # set once other replicas' revocations are heard
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            watch = self.service.store.watch_revocations(self._heard, self._listening)
            self._task = asyncio.ensure_future(watch)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _listening(self) -> None:
        if self.ready.is_set():  # again, after a lost connection: catch up
            self.service.tasks.spawn(self.catch_up(), "revocations-catch-up")
        self.ready.set()

    def _heard(self, job_id: str, jti: str) -> None:
        """Another replica revoked ``jti``. Only for jobs this process knows: an ended
        job's jtis are not kept."""
        service = self.service
        if not service.holds(job_id) or jti in service.revoked:
            return
        metrics.REVOCATION_NOTICES.inc()
        service.refuse_here(job_id, jti)

    async def catch_up(self) -> None:
        """Refuse here every token of a known open job that the store says is revoked."""
        service = self.service
        unheard = [
            (job.job_id, token.jti)
            for job in service.held_jobs()
            if job.state in OPEN
            for token in job.tokens
            if token.revoked_at is None and token.jti not in service.revoked
        ]
        for job_id, jti in unheard:
            try:
                revoked = await service.store.is_revoked(jti)
            except StoreError as err:  # each call's own store check still refuses it
                log.warning("revocations not caught up: %s", type(err).__name__)
                return
            if revoked:
                self._heard(job_id, jti)
