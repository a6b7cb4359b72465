"""``SqlStore``: the engine's ``Store`` port over SQLite or PostgreSQL.

Each method is one transaction (on PostgreSQL, one that runs a single statement or only
reads runs in autocommit instead: ``_run_alone``), run on the store's executor so the event
loop never blocks on the database: one thread for SQLite (writes serialise in-process, the
file lock is only contended by other processes), a small pool for PostgreSQL (the row lock
of the compare-and-set UPDATE serialises replicas). A cancelled caller does not cancel its
transaction: the thread finishes it, committed or not, like any write whose answer was lost.
One exception: on SQLite the gateway's revocation check reads on the caller's thread while
nothing of the store's own is queued or running (``adapters.store.reader``): the same answer,
without a hop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.store import (
    claims,
    exchanges,
    jobs,
    leases,
    migrate,
    notify,
    outbox,
    pacing,
    parts,
    records,
    sign_ins,
)
from adapters.store.answers import ANSWER_SECONDS, Answers
from adapters.store.connect import Connected, connect
from adapters.store.reader import PointReader
from engine.errors import StoreError
from engine.ports import (
    ApprovalRecord,
    ChainRecord,
    JobUpdate,
    JsonDoc,
    MessageRef,
    ModelExchange,
    OutboxItem,
    Revocation,
    StoredJob,
    TokenRecord,
)

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("breakglass.store")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Durable state in one SQL database. Build it with :meth:`open`, end it with :meth:`close`.

    ``clock`` only stamps bookkeeping columns (``created_at``/``updated_at``); every time the
    engine decides on is passed in by the engine.
    """

    def __init__(
        self, connected: Connected, clock: Clock = utc_now, answer_seconds: float = ANSWER_SECONDS
    ) -> None:
        self._engine: Engine = connected.engine
        self._executor: ThreadPoolExecutor = connected.executor
        self._safe_url = connected.safe_url
        self._keep_connection = connected.keep_connection
        self._kept: Connection | None = None  # used on the executor's one thread only
        self._clock = clock
        self._closed = False
        self._reader: PointReader | None = None  # SQLite: revocation reads without the hop
        self._busy = 0  # transactions submitted and not yet ended (ended on their thread)
        self._busy_lock = threading.Lock()
        self._parts = parts.PartCache()  # job documents' write-once members (WPCs)
        self._answers = Answers(answer_seconds)  # how long a caller waits for the database

    @classmethod
    async def open(
        cls, url: str, *, clock: Clock = utc_now, answer_seconds: float = ANSWER_SECONDS
    ) -> Self:
        """Connect to ``url`` and migrate the schema to head (a no-op when already there).
        A caller waits ``answer_seconds`` at most for the database (``answers``); the
        migration here as long as it takes."""
        store = cls(connect(url), clock, answer_seconds)
        try:
            await asyncio.wrap_future(store._executor.submit(store._tx, migrate.upgrade))
            if store._engine.dialect.name == "sqlite" and store._engine.url.database:
                store._reader = PointReader(store._engine.url.database)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Release connections and the executor thread(s); closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        # Transactions of cancelled callers still run on the executor: let them end and
        # check their connections in first, so that dispose closes every connection (one
        # checked in after it would only be closed by the garbage collector). The kept
        # connection is checked in on its own thread, after what was queued before.
        await asyncio.wrap_future(self._executor.submit(self._release))
        await loop.run_in_executor(None, self._executor.shutdown)
        await loop.run_in_executor(None, self._engine.dispose)
        if self._reader is not None:
            self._reader.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SqlStore({self._safe_url!r})"

    async def _run(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await self._submit(fn.__name__, lambda: self._tx(fn, *args, **kwargs))

    async def _run_alone(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn``, which runs one statement (atomic by itself) or only reads (at PostgreSQL's
        READ COMMITTED each statement sees its own snapshot, in a transaction or not): on
        PostgreSQL in autocommit, without the round trips of BEGIN and COMMIT. The Slack
        edge's replay record, the gateway's revocation check and the open-job listing wait
        for these on every request."""
        if self._keep_connection:  # SQLite: no round trips to save
            return await self._run(fn, *args, **kwargs)
        return await self._submit(fn.__name__, lambda: self._autocommit(fn, *args, **kwargs))

    async def _submit(self, what: str, work: Callable[[], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        return await self._answers.call(lambda: self._counted(work), f"{what} on {self._safe_url}")

    def _counted(self, work: Callable[[], T]) -> Future[T]:
        self._count(1)
        try:
            job = self._executor.submit(work)
        except BaseException:
            self._count(-1)
            raise
        # Ended, failed or cancelled before it ran: the thread's own callback says so, so
        # a caller that went away still counts until its transaction is over.
        job.add_done_callback(lambda _job: self._count(-1))
        return job

    def _count(self, change: int) -> None:
        with self._busy_lock:
            self._busy += change

    def _tx(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        def once() -> T:
            if not self._keep_connection:
                with self._engine.begin() as conn:  # commits on leaving: not retried
                    return _unless_lost(fn, conn, *args, **kwargs)
            if self._kept is None:
                self._kept = self._engine.connect()
            with self._kept.begin():  # invalidated by an error: it reconnects at next use
                return _unless_lost(fn, self._kept, *args, **kwargs)

        return self._again_if_lost(fn, once, again=True)

    def _autocommit(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        def once() -> T:
            with self._engine.connect() as conn:
                auto = conn.execution_options(isolation_level="AUTOCOMMIT")
                return _unless_lost(fn, auto, *args, **kwargs)

        # Every statement run alone is a read, but for the replay record: an INSERT whose
        # answer a lost connection may have taken after it committed is never run twice.
        return self._again_if_lost(fn, once, again=fn is not records.claim_key)

    def _again_if_lost(self, fn: Callable[..., object], once: Callable[[], T], again: bool) -> T:
        """``once()``; when it met a dead connection before its commit (a failover, an
        admin's ``pg_terminate_backend``, a proxy dropping it), once more on a fresh one
        (SQLAlchemy's optimistic disconnect handling: the pool is already invalidated).
        The server aborted the first: nothing of it was done. Errors are StoreErrors."""
        try:
            try:
                return once()
            except _LostBeforeCommit as lost:
                if not again:
                    raise
                log.info(
                    "%s on %s met a lost connection (%s); run again on a new one",
                    fn.__name__,
                    self._safe_url,
                    type(lost.error.orig).__name__,
                )
                return once()
        except _LostBeforeCommit as lost:
            raise StoreError(self._describe(fn, lost.error)) from lost.error
        except SQLAlchemyError as exc:
            raise StoreError(self._describe(fn, exc)) from exc

    def _release(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def _describe(self, fn: Callable[..., object], exc: SQLAlchemyError) -> str:
        # The driver's first line says what failed (refused, locked, disk full); the SQL and
        # its parameters stay in the chained exception for the service log.
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [""])[0]
        password = self._engine.url.password  # belt and braces: drivers should not echo it
        if password and _shows(first, str(password)):
            # Withheld whole: masking each occurrence mangled the text around a short
            # password (every "p" of it for "p"), and showed where the password was.
            first = "(the driver's message is withheld: it contains the password)"
        return f"{fn.__name__} on {self._safe_url} failed: {type(orig).__name__}: {first}"

    # policies
    async def put_policy(self, policy_hash_b64u: str, envelope: JsonDoc) -> bool:
        return await self._run(records.put_policy, policy_hash_b64u, envelope)

    async def get_policy(self, policy_hash_b64u: str) -> JsonDoc | None:
        return await self._run(records.get_policy, policy_hash_b64u)

    # jobs
    async def create_job(self, update: JobUpdate) -> StoredJob:
        return await self._write_job(jobs.create, update)

    async def load_job(self, job_id: str) -> StoredJob:
        return await self._run_alone(jobs.load, self._parts, job_id)

    async def update_job(self, update: JobUpdate) -> StoredJob:
        return await self._write_job(jobs.update_cas, update)

    async def _write_job(
        self,
        write: Callable[[Connection, JobUpdate, jobs.Stored, datetime], StoredJob],
        up: JobUpdate,
    ) -> StoredJob:
        """``write`` (create or compare-and-set) with the document's parts split out."""
        stored = self._parts.split(up.document)
        job = await self._run(write, up, stored, self._clock())
        self._parts.committed(stored[1])  # only now: a rolled-back insert holds nothing
        return job

    async def list_jobs(self, states: Collection[str] | None = None) -> list[StoredJob]:
        return await self._run(jobs.list_jobs, self._parts, states)

    async def list_changed(
        self, states: Collection[str], known: Mapping[str, int]
    ) -> tuple[list[str], list[StoredJob]]:
        return await self._run_alone(jobs.list_changed, self._parts, states, known)

    async def page_jobs(self, limit: int, before: str | None = None) -> list[StoredJob]:
        return await self._run(jobs.page, self._parts, limit, before)

    async def chain(self, job_id: str) -> list[ChainRecord]:
        return await self._run(jobs.chain, job_id)

    async def approvals(self, job_id: str) -> list[ApprovalRecord]:
        return await self._run(jobs.approvals, job_id)

    async def tokens(self, job_id: str) -> list[TokenRecord]:
        return await self._run(jobs.tokens, job_id)

    # idempotency
    async def idempotent_result(self, key: str) -> JsonDoc | None:
        return await self._run_alone(records.idempotent_result, key)

    async def claim_key(self, key: str, result: JsonDoc, at: datetime) -> bool:
        return await self._run_alone(records.claim_key, key, result, at)

    # revocation
    async def revoke(self, revocation: Revocation) -> bool:
        return await self._run(records.revoke, revocation)

    async def is_revoked(self, jti: str) -> bool:
        if self._reader is not None and not self._closed and self._busy == 0:
            # Nothing of ours is queued or running: the committed state is the whole answer.
            answer = self._reader.is_revoked(jti)
            if answer is not None:
                return answer
        return await self._run_alone(records.is_revoked, jti)

    async def revocation(self, jti: str) -> Revocation | None:
        return await self._run(records.revocation, jti)

    async def watch_revocations(
        self, on_revoked: notify.OnRevoked, on_ready: Callable[[], None] | None = None
    ) -> None:
        """Hear every replica's revocations as they commit (PostgreSQL ``LISTEN``), until
        cancelled. On SQLite it returns at once: the gateway's store check is the path."""
        if self._engine.dialect.name != "postgresql":
            if on_ready is not None:
                on_ready()
            return
        schema = await self._run(notify.schema_of)
        await notify.listen(self._engine.url, schema, on_revoked, on_ready)

    # chat message references and outbox
    async def put_message_ref(self, ref: MessageRef) -> None:
        await self._run(outbox.put_message_ref, ref)

    async def message_refs(self, job_id: str, platform: str | None = None) -> list[MessageRef]:
        return await self._run(outbox.message_refs, job_id, platform)

    async def enqueue(self, platform: str, job_id: str, payload: JsonDoc, at: datetime) -> int:
        return await self._run(outbox.enqueue, platform, job_id, payload, at)

    async def due(
        self, platform: str, now: datetime, limit: int = 50, lease_until: datetime | None = None
    ) -> list[OutboxItem]:
        return await self._run(outbox.due, platform, now, limit, lease_until)

    async def delivered(self, item_id: int) -> None:
        await self._run(outbox.delivered, item_id)

    async def postpone(self, item_id: int, not_before: datetime) -> None:
        await self._run(outbox.postpone, item_id, not_before)

    # tool snapshots
    async def save_snapshot(self, key: str, snapshot: JsonDoc) -> JsonDoc:
        return await self._run(records.save_snapshot, key, snapshot, self._clock())

    async def load_snapshot(self, key: str) -> JsonDoc | None:
        return await self._run(records.load_snapshot, key)

    async def snapshot_keys(self, prefix: str) -> list[str]:
        """So the sweep finds the CA exclusions we made (``adapters.graph.ca.SnapshotIndex``)."""
        return await self._run(records.snapshot_keys, prefix)

    # model exchanges
    async def put_exchange(self, exchange: ModelExchange) -> None:
        await self._run(exchanges.put, exchange)

    async def exchanges(self, job_id: str) -> list[ModelExchange]:
        return await self._run(exchanges.for_job, job_id)

    async def purge_exchanges(self, before: datetime) -> int:
        return await self._run(exchanges.purge, before)

    # leases (one replica per job's timer work) and housekeeping
    async def acquire_lease(self, job_id: str, owner: str, until: datetime, now: datetime) -> bool:
        return await self._run(leases.acquire, job_id, owner, until, now)

    async def renew_leases(self, job_ids: Collection[str], owner: str, until: datetime) -> set[str]:
        return await self._run(leases.renew, job_ids, owner, until) if job_ids else set()

    async def release_lease(self, job_id: str, owner: str) -> bool:
        return await self._run(leases.release, job_id, owner)

    async def lease_holders(self, now: datetime) -> dict[str, str]:
        return await self._run_alone(leases.holders, now)

    async def reassign_leases(self, owner: str, to: str, until: datetime) -> set[str]:
        return await self._run(leases.reassign, owner, to, until)

    # begun step-up sign-ins (any replica may take the callback)
    async def put_sign_in(self, state: str, document: JsonDoc, started: datetime) -> None:
        await self._run(sign_ins.put, state, document, started)

    async def sign_in(self, state: str) -> tuple[JsonDoc, bool] | None:
        return await self._run(sign_ins.get, state)

    async def claim_sign_in(self, state: str) -> bool:
        return await self._run(sign_ins.claim, state)

    async def purge_sign_ins(self, before: datetime) -> int:
        return await self._run(sign_ins.purge, before)

    async def grant_claims(self) -> dict[str, str]:
        """Every grant claim: grant key -> the open job holding it (``engine.grants``)."""
        return await self._run_alone(claims.holders)

    # request pacing shared by replicas (Conditional Access: 1 request/s per tenant)
    async def reserve_slot(self, bucket: str, interval: timedelta, now: datetime) -> datetime:
        return await self._run(pacing.reserve, bucket, interval, now)

    async def count_jobs(self) -> dict[str, int]:
        return await self._run(leases.count_jobs)

    async def purge_keys(self, before: datetime) -> int:
        return await self._run(leases.purge_keys, before)


class _LostBeforeCommit(Exception):
    """A statement met a dead connection, before its transaction's commit."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _unless_lost(
    fn: Callable[Concatenate[Connection, P], T], conn: Connection, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn(conn, ...)``; a disconnect it meets is a ``_LostBeforeCommit`` (SQLAlchemy marks
    it ``connection_invalidated``)."""
    try:
        return fn(conn, *args, **kwargs)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise _LostBeforeCommit(exc) from exc
        raise


def _shows(text: str, secret: str) -> bool:
    """Does ``text`` hold ``secret`` as a token of its own (not inside a longer word)?"""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", text) is not None
