"""The job service's commands: runs lifecycle transitions against the store.

Every command goes: idempotency check → load job → pure transition → one compare-and-set
write (job, chain records, tokens, revocations, approvals, idempotency key) → effects.
Effects come after the commit, so a crash between the two is healed by :meth:`resume`,
which replays what an open job still needs (rollback, revocation, executor). The rooms
next door: ``bot.effects`` (what a transition does), ``bot.notifier`` (telling people),
``bot.rollback`` (undoing the grant), ``bot.sweep`` (the tenant-side safety net).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import metrics, ticks
from bot.clock import sleep_for
from bot.effects import Effects
from bot.job_update import job_update
from bot.keyed_lock import KeyedLock
from bot.leases import LEASE_TTL, Leases
from bot.notifier import RECEIPTS_EVERY, Notifier, PacedChat
from bot.outcomes import outcome_of, refused_request
from bot.prerequisites import (
    preflight_access,
    refuse_if_granted,
    with_approver_membership,
    with_excluded_approvers,
)
from bot.revocation_listener import RevocationListener
from bot.rollback import RollbackRunner
from bot.sweep import sweep, swept_notice
from bot.tasks import TaskSet
from bot.unrecorded import UnrecordedEnds
from engine import grants, lifecycle
from engine.cst import TokenKind, sign_token
from engine.errors import (
    AdapterError,
    CommandRefused,
    ConcurrentUpdate,
    JobNotFound,
    StoreError,
)
from engine.identity import Directory
from engine.job import OPEN, Actor, Job
from engine.lifecycle import Command, Ctx, Keys, Rules, Transition
from engine.outcome import Outcome
from engine.ports import (
    ChatEvent,
    ExecutorPort,
    JobUpdate,
    JsonDoc,
    ModelExchange,
    Store,
    StoredJob,
    ToolPort,
)
from engine.targets import TENANT_UNAVAILABLE, TargetRejected, TargetResolver

if TYPE_CHECKING:
    from bot.gateway_service import ToolGateway

log = logging.getLogger("breakglass.service")
MAX_CAS_ATTEMPTS = 20
KEY_WINDOW = timedelta(days=7)  # how long a re-delivered command is answered from its key
SIGN_IN_WINDOW = timedelta(days=1)  # begun step-up sign-ins (they expire after 15 minutes)
_RECEIPTS = (lifecycle.ToolCallRecorded, lifecycle.ModelCallRecorded)


class JobService:
    def __init__(
        self,
        *,
        store: Store,
        keys: Keys,
        rules: Rules,
        tools: ToolPort,
        clock: Callable[[], datetime],
        directory: Directory | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,  # default: the clock's
        bundle_dir: Path | None = None,
        receipts_every: timedelta = RECEIPTS_EVERY,
        resolver: TargetResolver | None = None,
        replica_id: str | None = None,
        lease_ttl: timedelta = LEASE_TTL,
        deployment: str | None = None,
        kept_commands: Path | None = None,  # a person's unrecorded end, kept on disk (ADR 0021)
    ) -> None:
        self.store = store
        self.keys = keys
        self.rules = rules
        self.tools = tools
        self.clock = clock
        self.directory = directory or Directory()
        self.sleep = sleep or sleep_for(clock)  # waits in the clock's time (demo: faster)
        self.bundle_dir = bundle_dir
        self.resolver = resolver  # preflight: targets checked before anyone is asked
        self.executor: ExecutorPort | None = None
        self.gateway: ToolGateway | None = None  # set by bot.gateway_service.ToolGateway
        self.revoked: set[str] = set()  # jti revoked by this process: the fast path
        self.tasks = TaskSet()  # every background task of the service, its gateway and executors
        self.notifier = Notifier(store, clock)
        self.chat = PacedChat(self.notifier, clock, self.sleep, self.tasks, receipts_every)
        self.effects = Effects(self, bundle_dir)
        self.rollbacks = RollbackRunner(self)
        self.unrecorded = UnrecordedEnds(self, kept_commands)
        self.leases = Leases(store, clock, replica_id, lease_ttl)  # the jobs this replica runs
        self.deployment = deployment  # the sweep leaves grants other deployments marked
        self._locks: dict[str, asyncio.Lock] = {}
        self._requests = KeyedLock()  # per grant
        self.revocations = RevocationListener(self)
        self.listening = self.revocations.ready  # set once other replicas' are heard
        # Jobs as this process last wrote or read them: saves a read per command. A stale
        # entry (another replica wrote) only costs one lost compare-and-set and a reload.
        self._cache: dict[str, tuple[int, Job]] = {}

    # ----------------------------------------------------------------- entry points

    def actor(self, chat_identity: str, display: str = "", email: str | None = None) -> Actor:
        return self.directory.resolve(chat_identity, display, email)

    async def request(self, command: lifecycle.Request, key: str | None = None) -> Outcome:
        if key and (cached := await self.store.idempotent_result(key)):
            return Outcome.replayed_from(cached)
        try:
            command = await self._resolved(command)
            command = await preflight_access(command, self.rules, self.tools)  # issue 17
            command = await with_excluded_approvers(command, self.rules, self.tools)
        except CommandRefused as err:  # before anyone is asked: nothing stored, nobody told
            return refused_request(command, err)
        # One request per grant at a time here: two at once would both find it free.
        async with self._requests.hold(grants.grant_key(command.template, command.targets) or ""):
            return await self._create(command, key)

    async def _create(self, command: lifecycle.Request, key: str | None) -> Outcome:
        try:
            transition = lifecycle.start(command, self._ctx(await self._held()))
            await refuse_if_granted(command, self.tools)  # no job holds it: does the tenant?
        except CommandRefused as err:
            return refused_request(command, err)
        outcome = Outcome(True, command.job_id, transition.result)
        update = job_update(None, 0, transition, key, outcome.to_json())
        try:
            await self.store.create_job(update)
            self._cache[command.job_id] = (1, transition.job)
        except ConcurrentUpdate:
            cached = await self.store.idempotent_result(key) if key else None
            if cached:
                return Outcome.replayed_from(cached)
            return Outcome(False, command.job_id, reason="DUPLICATE_JOB")
        self._tell(command.job_id, await self.effects.perform(None, transition))
        return outcome

    async def _resolved(self, command: lifecycle.Request) -> lifecycle.Request:
        """The request with its targets resolved to object ids (names kept for the cards);
        raises TargetRejected when the tenant does not know them or cannot be asked."""
        if self.resolver is None:
            return command
        try:
            found = await self.resolver.resolve_targets(command.template, command.targets)
        except AdapterError as exc:
            raise TargetRejected(TENANT_UNAVAILABLE, str(exc)[:200]) from exc
        targets = {k: found[k].object_id if k in found else v for k, v in command.targets.items()}
        resolved = {
            k: {"given": t.given, "object_id": t.object_id, "display_name": t.display_name}
            for k, t in found.items()
        }
        return replace(command, targets=targets, resolved=resolved)

    async def command(
        self,
        job_id: str,
        command: Command,
        key: str | None = None,
        *,
        exchange: ModelExchange | None = None,
    ) -> Outcome:
        """Apply ``command``; a re-delivered ``key`` returns the first result and does nothing.
        ``exchange`` (a model call's bodies) is stored in the same transaction."""
        if key and (cached := await self._replayed(key)):
            return Outcome.replayed_from(cached)
        if isinstance(command, lifecycle.Approve):  # read before the lock: it is the tenant
            command = await with_approver_membership(await self.peek(job_id), command, self.tools)
        outcome = Outcome(False, job_id, reason="BUSY", detail="too many concurrent updates")
        events: list[ChatEvent] = []
        try:
            async with self._lock(job_id):
                for _ in range(MAX_CAS_ATTEMPTS):
                    try:
                        outcome, events = await self._attempt(job_id, command, key, exchange)
                        break
                    except ConcurrentUpdate:
                        self._cache.pop(job_id, None)
                        if key and (cached := await self.store.idempotent_result(key)):
                            return Outcome.replayed_from(cached)
        except StoreError as refused:  # a window's end is not held back for its record
            told = await self.unrecorded.end(job_id, command, refused)
            if told is None:
                raise
            raise told from refused
        await self._forget_if_resolved(job_id)
        self._tell(job_id, events)
        return outcome

    async def _replayed(self, key: str) -> JsonDoc | None:
        """The first result of a re-delivered command. None when the store cannot say (it
        does not answer): the command goes on, and its own write (which holds the key)
        decides; a Kill is not held back for a lookup (ADR 0024)."""
        try:
            return await self.store.idempotent_result(key)
        except StoreError:
            return None

    def _tell(self, job_id: str, events: list[ChatEvent]) -> None:
        """People are told beside the job, never in its way: chat is slow and may be down,
        and a rollback's steps (each a command) must not wait on it, nor must a Kill.
        ``PacedChat`` keeps one job's posts in the order they were handed over."""
        if events and not self.chat.hold_now(job_id, events):
            self.tasks.spawn(self.chat.publish(job_id, events), f"chat:{job_id}")

    async def _forget_if_resolved(self, job_id: str) -> None:
        """A job that has ended needs nothing of this process any more: drop its cached
        document, its lock, its revoked jtis (the store keeps them) and its lease."""
        cached = self._cache.get(job_id)
        if cached is None or cached[1].state in OPEN:
            return
        job = cached[1]
        del self._cache[job_id]
        self.unrecorded.forget(job_id)
        lock = self._locks.get(job_id)
        if lock is not None and not lock.locked():
            del self._locks[job_id]
        self.revoked.difference_update(tok.jti for tok in job.tokens)
        await self.leases.release(job_id)

    async def _current(self, job_id: str) -> tuple[int, Job]:
        cached = self._cache.get(job_id)
        if cached is None:
            stored = await self.store.load_job(job_id)
            cached = (stored.version, Job.from_json(stored.document))
            self._cache[job_id] = cached
        return cached

    async def _attempt(
        self, job_id: str, command: Command, key: str | None, exchange: ModelExchange | None
    ) -> tuple[Outcome, list[ChatEvent]]:
        version, job = await self._current(job_id)
        # An approval may be the last: it must see which live job holds the grant.
        approving = isinstance(command, lifecycle.Approve)
        ctx = self._ctx(await self._held(live=True) if approving else None)
        try:
            transition = lifecycle.apply(job, command, ctx)
        except CommandRefused as err:
            metrics.COMMAND_REFUSALS.labels(err.reason).inc()
            if not isinstance(command, _RECEIPTS):
                await self._note_refusal(version, job, command, err, ctx.now)
            # else a receipt the chain cannot take (the job has ended, or an agent's flood
            # is past its call limit): its caller logs it. Noting it would rewrite the job,
            # an ended one too, at each call of a looping agent or a leaked token.
            return Outcome(False, job_id, reason=err.reason, detail=err.detail), []
        outcome = outcome_of(job_id, transition.result)
        update = job_update(job, version, transition, key, outcome.to_json())
        if exchange is not None:
            update = replace(update, exchanges=(exchange,))
        await self.store.update_job(update)
        self._cache[job_id] = (version + 1, transition.job)
        return outcome, await self.effects.perform(job, transition, update.document)

    async def _note_refusal(
        self, version: int, job: Job, command: Command, err: CommandRefused, now: datetime
    ) -> None:
        noted = lifecycle.refusal_note(job, command, err, now)
        update = JobUpdate(job.job_id, version, noted.state, noted.to_json())
        await self.store.update_job(update)
        self._cache[job.job_id] = (version + 1, noted)
        log.info(
            "refused %s on %s: %s",
            type(command).__name__,
            job.job_id,
            err.reason,
            extra={"job_id": job.job_id, "reason": err.reason},
        )

    async def load(self, job_id: str) -> Job:
        """The job as stored (always read from the store: another replica may have moved it)."""
        stored = await self.store.load_job(job_id)
        job = Job.from_json(stored.document)
        self._cache[job_id] = (stored.version, job)
        return job

    async def peek(self, job_id: str) -> Job:
        """The job as this process last saw it; reads the store only when unknown."""
        return (await self._current(job_id))[1]

    async def open_jobs(self) -> list[Job]:
        """Every open job, as stored. Only the jobs whose version this process does not hold
        are read and decoded: every request, approval and tick asks this (issue 19: with
        hundreds of open jobs, decoding all of them each time starved the replica)."""
        held = dict(self._cache)  # commands may change the cache while the store reads
        ids, changed = await self.store.list_changed(OPEN, {j: v for j, (v, _) in held.items()})
        for stored in changed:
            held[stored.job_id] = (stored.version, Job.from_json(stored.document))
            now = self._cache.get(stored.job_id)
            if now is None or now[0] < stored.version:  # a command may have written since
                self._cache[stored.job_id] = held[stored.job_id]
        listed = set(ids)
        # Open here but not listed: ended on another replica (or created after the read).
        gone = [j for j, (_, job) in self._cache.items() if job.state in OPEN and j not in listed]
        for job_id in gone:
            del self._cache[job_id]
        return [job for job_id in ids if (job := held[job_id][1]).state in OPEN]

    def token_for(self, job: Job, kind: str) -> str:
        token = job.token(kind)
        if token is None:
            raise JobNotFound(f"job {job.job_id} has no {kind} token")
        return sign_token(token.claims, self.keys.issuer)

    # -------------------------------------------------------------------- timers

    async def tick(self) -> None:
        """Advance the clock of every open job this replica runs (``bot.ticks``)."""
        await ticks.tick(self)

    async def resume(self) -> None:
        """After a (re)start: make every open job whole again, then tick (``bot.ticks``)."""
        await ticks.resume(self)

    def would(self, job: Job, command: Command) -> Transition | None:
        """What ``command`` would do to ``job`` now; None when it is refused (pure)."""
        try:
            return lifecycle.apply(job, command, self._ctx())
        except CommandRefused:
            return None

    async def sweep(self) -> list[str]:
        """Reconciliation (see :mod:`bot.sweep`), then housekeeping; returns what was removed."""
        removed = await sweep(self.store, self.tools, self.leases, self.deployment, self._swept)
        await self.store.purge_keys(self.clock() - KEY_WINDOW)
        await self.store.purge_sign_ins(self.clock() - SIGN_IN_WINDOW)
        return removed

    def _swept(self, job: StoredJob, grant: str) -> None:
        """Tell the job's channel what the sweep removed: chat only, its chain is closed."""
        self._tell(job.job_id, [swept_notice(job, grant, self.clock())])

    def knows_revoked(self, job: Job, jti: str) -> bool:
        """Revoked as this process knows it (the gateway's and the model proxy's fast path):
        by this process or a replica heard through NOTIFY, or recorded on the job itself (a
        resolved job's jtis leave ``revoked`` when it is evicted; its record still says so),
        or the agent's of a window a person ended here unrecorded (ADR 0021: kept on disk, so
        from this process's start). The store, asked apart, is the authority."""
        ended = self.unrecorded.holds(job.job_id)
        return jti in self.revoked or any(
            t.jti == jti and (t.revoked_at is not None or (ended and t.kind == TokenKind.AGENT))
            for t in job.tokens
        )

    def listen(self) -> None:
        """Hear the revocations other replicas commit (PostgreSQL LISTEN), until close()."""
        self.revocations.start()

    def holds(self, job_id: str) -> bool:
        """Does this process hold ``job_id`` (as it last wrote or read it)?"""
        return job_id in self._cache

    def held_jobs(self) -> list[Job]:
        return [job for _, job in list(self._cache.values())]

    def refuse_here(self, job_id: str, jti: str) -> None:
        """Refuse ``jti`` in this process at once and stop the job's agent calls in flight."""
        self.revoked.add(jti)
        if self.gateway is not None:
            self.gateway.stop_calls(job_id)

    async def close(self) -> None:
        """Shutdown: cancel and await every background task (in-flight calls are receipted)."""
        await self.revocations.stop()
        await self.tasks.cancel()
        await self.leases.release_all()  # a drained replica's jobs move at the next tick

    # ------------------------------------------------------------------- bundles

    async def bundle(self, job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
        return await self.effects.bundle(job)

    async def write_bundle(self, job: Job) -> dict[str, Any]:
        return await self.effects.write_bundle(job)

    # ------------------------------------------------------------------- helpers

    def _ctx(self, held: Mapping[str, str] | None = None) -> Ctx:
        return Ctx(self.clock(), self.keys, self.rules, held or {})

    async def _held(self, *, live: bool = False) -> dict[str, str]:
        """Grant key -> the open (``live``: active) job holding it, read from the store."""
        return grants.held_grants(await self.open_jobs(), live=live)

    def _lock(self, job_id: str) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())
