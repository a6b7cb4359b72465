"""How long a caller waits for the database, and what the store does once it stops answering.

A database that does not answer (a table locked by an administrator's ``VACUUM FULL`` or
migration, a server frozen, a network path that drops packets without a reset) is not an
error: a statement just waits, on PostgreSQL for as long as the lock is held or until TCP
gives up, which is minutes. Each caller waited with it, the tick too, so no window ended
while it lasted. So a caller waits ``seconds`` at most, then gets a ``StoreError``, which
the service already meets as "the store refuses" (ADR 0021: a window's end is not held back
for its record). The statement itself goes on on its thread, like a write whose answer was
lost: it may still commit (ADR 0024).

Once one caller has waited in vain the store is *stalled*: until the database answers a
statement again (any statement of ours that ends, not one abandoned unrun), callers are
refused at once, but for one probe at a time, ``seconds`` after the last one gave up: every
caller waiting its full time would hold each tick up for as long again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from engine.errors import StoreError

T = TypeVar("T")
ANSWER_SECONDS = 15.0  # past SQLite's busy wait (10 s) and PostgreSQL's connect timeout (10 s)


class Answers:
    def __init__(self, seconds: float = ANSWER_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._stalled_since: float | None = None  # monotonic; None while the database answers
        self._probe_ended = 0.0  # when the last probe gave up (or was answered)
        self._probing = False

    async def call(self, submit: Callable[[], Future[T]], what: str) -> T:
        """The result of the job ``submit`` hands to a thread, or a StoreError once
        ``seconds`` have passed without one (at once while stalled, but for a probe)."""
        probe = self._admit(what)
        deadline = asyncio.timeout(self.seconds)
        try:
            job = submit()
            job.add_done_callback(self._ended)
            async with deadline:
                return await asyncio.wrap_future(job)
        except TimeoutError:
            if not deadline.expired():
                raise  # the statement's own (its thread ended it): not a silent database
            with self._lock:
                self._probe_ended = time.monotonic()  # the next probe waits as long again
                if self._stalled_since is None:
                    self._stalled_since = self._probe_ended
            raise StoreError(
                f"{what}: the database did not answer within {self.seconds:g} s"
            ) from None
        finally:
            if probe:
                with self._lock:
                    self._probing, self._probe_ended = False, time.monotonic()

    def _admit(self, what: str) -> bool:
        """May a caller go to the database now? Raises when stalled; True for a probe."""
        with self._lock:
            if self._stalled_since is None:
                return False
            now = time.monotonic()
            if self._probing or now - self._probe_ended < self.seconds:
                waited = now - self._stalled_since
                raise StoreError(f"{what}: the database has not answered for {waited:.0f} s")
            self._probing = True
            return True

    def _ended(self, job: Future[Any]) -> None:
        """A statement ended (on its thread): the database answers again. One dropped
        before it ran says nothing of the database."""
        if not job.cancelled():
            with self._lock:
                self._stalled_since = None
