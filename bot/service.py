"""The job service: runs lifecycle transitions against the store and performs their effects.

Every command goes: idempotency check → load job → pure transition → one compare-and-set
write (job, chain records, tokens, revocations, approvals, idempotency key) → effects.
Effects come after the commit, so a crash between the two is healed by :meth:`resume`,
which replays what an open job still needs (rollback, revocation, executor).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.prerequisites import confirm_prerequisite
from bot.rollback import run_rollback
from engine import lifecycle
from engine.canonical import jcs
from engine.cst import TokenKind, sign_token
from engine.errors import CommandRefused, ConcurrentUpdate, JobNotFound
from engine.identity import Directory
from engine.job import ACTIVE, FAILED, KILL_REASONS, OPEN, ROLLING_BACK, Actor, Job
from engine.lifecycle import Command, Ctx, Effect, Keys, Rules, Transition
from engine.outcome import Outcome
from engine.ports import (
    ApprovalRecord,
    ChatEvent,
    ChatPort,
    ExecutorPort,
    JobUpdate,
    Revocation,
    Store,
    TokenRecord,
    ToolPort,
)
from engine.proof import bundle_for_job
from engine.timeutil import from_epoch, parse_iso

if TYPE_CHECKING:
    from bot.gateway_service import ToolGateway

log = logging.getLogger("breakglass.service")
MAX_CAS_ATTEMPTS = 20
CHAT_EFFECTS = {
    lifecycle.ASK_APPROVERS,
    lifecycle.UPDATE_CARDS,
    lifecycle.ANNOUNCE,
    lifecycle.NOTICE,
    lifecycle.FINISH,
    lifecycle.ESCALATE,
}


class Notifier:
    """Fans chat events out to the job's platform; failures wait in the outbox."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.platforms: dict[str, ChatPort] = {}

    def register(self, port: ChatPort) -> None:
        self.platforms[port.platform] = port

    async def publish(self, event: ChatEvent) -> None:
        platform = str(event.job.get("channel", {}).get("platform", "console"))
        port = self.platforms.get(platform)
        if port is None:
            return
        try:
            await port.deliver(event)
        except Exception:  # any delivery failure: keep the event, never block the job
            log.warning("chat delivery to %s failed; queued", platform, exc_info=True)
            await self.store.enqueue(
                platform, str(event.job["job_id"]), _outbox_payload(event), self.clock()
            )


def _outbox_payload(event: ChatEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "detail": dict(event.detail),
        "seqs": [r.seq for r in event.records],
        "at": event.now.isoformat(),
    }


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        bundle_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.rules = rules
        self.tools = tools
        self.clock = clock
        self.directory = directory or Directory()
        self.sleep = sleep
        self.bundle_dir = bundle_dir
        self.notifier = Notifier(store, clock)
        self.executor: ExecutorPort | None = None
        self.gateway: ToolGateway | None = None  # set by bot.gateway_service.ToolGateway
        self.revoked: set[str] = set()  # jti revoked by this process: the fast path
        self._locks: dict[str, asyncio.Lock] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        # Jobs as this process last wrote or read them: saves a read per command. A stale
        # entry (another replica wrote) only costs one lost compare-and-set and a reload.
        self._cache: dict[str, tuple[int, Job]] = {}
        self._rollbacks: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------- entry points

    def actor(self, chat_identity: str, display: str = "", email: str | None = None) -> Actor:
        return self.directory.resolve(chat_identity, display, email)

    async def request(self, command: lifecycle.Request, key: str | None = None) -> Outcome:
        if key and (cached := await self.store.idempotent_result(key)):
            return _replayed(cached)
        ctx = self._ctx()
        try:
            command = await confirm_prerequisite(command, self.rules, self.tools)  # issue 17
            transition = lifecycle.start(command, ctx)
        except CommandRefused as err:
            log.info(
                "refused request by %s: %s",
                command.actor.chat_identity,
                err.reason,
                extra={"job_id": command.job_id, "reason": err.reason},
            )
            return Outcome(False, command.job_id, reason=err.reason, detail=err.detail)
        outcome = Outcome(True, command.job_id, transition.result)
        update = self._update(None, 0, transition, key, outcome)
        try:
            await self.store.create_job(update)
            self._cache[command.job_id] = (1, transition.job)
        except ConcurrentUpdate:
            cached = await self.store.idempotent_result(key) if key else None
            if cached:
                return _replayed(cached)
            return Outcome(False, command.job_id, reason="DUPLICATE_JOB")
        await self._publish(command.job_id, await self._perform(None, transition))
        return outcome

    async def command(self, job_id: str, command: Command, key: str | None = None) -> Outcome:
        """Apply ``command``; a re-delivered ``key`` returns the first result and does nothing."""
        if key and (cached := await self.store.idempotent_result(key)):
            return _replayed(cached)
        outcome = Outcome(False, job_id, reason="BUSY", detail="too many concurrent updates")
        events: list[ChatEvent] = []
        async with self._lock(job_id):
            for _ in range(MAX_CAS_ATTEMPTS):
                try:
                    outcome, events = await self._attempt(job_id, command, key)
                    break
                except ConcurrentUpdate:
                    self._cache.pop(job_id, None)
                    if key and (cached := await self.store.idempotent_result(key)):
                        return _replayed(cached)
        # Chat is slow and may be down: people are told after the job lock is released,
        # so a hanging platform never delays the job's next command (a Kill above all).
        await self._publish(job_id, events)
        return outcome

    async def _current(self, job_id: str) -> tuple[int, Job]:
        cached = self._cache.get(job_id)
        if cached is None:
            stored = await self.store.load_job(job_id)
            cached = (stored.version, Job.from_json(stored.document))
            self._cache[job_id] = cached
        return cached

    async def _attempt(
        self, job_id: str, command: Command, key: str | None
    ) -> tuple[Outcome, list[ChatEvent]]:
        version, job = await self._current(job_id)
        ctx = self._ctx()
        try:
            transition = lifecycle.apply(job, command, ctx)
        except CommandRefused as err:
            noted = lifecycle.refusal_note(job, command, err, ctx.now)
            await self.store.update_job(JobUpdate(job_id, version, noted.state, noted.to_json()))
            self._cache[job_id] = (version + 1, noted)
            log.info(
                "refused %s on %s: %s",
                type(command).__name__,
                job_id,
                err.reason,
                extra={"job_id": job_id, "reason": err.reason},
            )
            metrics.COMMAND_REFUSALS.labels(err.reason).inc()
            return Outcome(False, job_id, reason=err.reason, detail=err.detail), []
        outcome = Outcome(True, job_id, transition.result)
        await self.store.update_job(self._update(job, version, transition, key, outcome))
        self._cache[job_id] = (version + 1, transition.job)
        return outcome, await self._perform(job, transition)

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
        return [Job.from_json(s.document) for s in await self.store.list_jobs(OPEN)]

    # -------------------------------------------------------------------- timers

    async def tick(self) -> None:
        """Advance every open job's clock: expiry, window end, notices, stalled rollbacks."""
        for job in await self.open_jobs():
            if job.state == ROLLING_BACK and job.job_id in self._rollbacks:
                continue
            await self.command(job.job_id, lifecycle.Tick())

    async def resume(self) -> None:
        """After a (re)start: make every open job whole again, then tick once."""
        for job in await self.open_jobs():
            for token in job.tokens:
                if token.revoked_at is not None:
                    self.revoked.add(token.jti)
            if job.state == ACTIVE and job.policy_envelope is not None:
                await self.store.put_policy(job.plan.plan_hash, job.policy_envelope)
                end = job.window_end_at()
                if end is not None and self.clock() < end and self.executor is not None:
                    await self.executor.start(job.to_json(), self.token_for(job, TokenKind.AGENT))
            if job.state == ROLLING_BACK:
                self._spawn_rollback(job.job_id)
        await self.tick()

    async def sweep(self) -> list[str]:
        """Reconciliation: remove every grant carrying our job marker whose job is not open.

        The third timebox layer's safety net: whatever a crash, a lost response or a bug left
        behind is found in the tenant itself. Returns what was removed."""
        removed = []
        for grant in await self.tools.find_marked_grants():
            try:
                state: str | None = (await self.store.load_job(grant.job_id)).state
            except JobNotFound:
                state = None  # our marker but no job of ours: nothing justifies it
            if state in OPEN:
                continue
            result = await self.tools.call(grant.rollback_tool, grant.arguments)
            log.warning(
                "reconciliation removed %s (job %s is %s): %s",
                grant.description,
                grant.job_id,
                state or "unknown",
                result.status,
            )
            if result.ok:
                removed.append(grant.description)
        return removed

    # ------------------------------------------------------------------- helpers

    def _ctx(self) -> Ctx:
        return Ctx(self.clock(), self.keys, self.rules)

    def _lock(self, job_id: str) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    def token_for(self, job: Job, kind: str) -> str:
        token = job.token(kind)
        if token is None:
            raise JobNotFound(f"job {job.job_id} has no {kind} token")
        return sign_token(token.claims, self.keys.issuer)

    def _update(
        self, before: Job | None, version: int, t: Transition, key: str | None, outcome: Outcome
    ) -> JobUpdate:
        job = t.job
        known = {tok.jti: tok for tok in (before.tokens if before else ())}
        tokens = [
            TokenRecord(
                tok.jti,
                job.job_id,
                tok.kind,
                tok.claims,
                _epoch_dt(tok.claims["iat"]),
                _epoch_dt(tok.claims["exp"]),
            )
            for tok in job.tokens
            if tok.jti not in known
        ]
        revocations = [
            Revocation(
                tok.jti, job.job_id, parse_iso(tok.revoked_at), _revocation_record(t, tok.jti)
            )
            for tok in job.tokens
            if tok.revoked_at and not (known.get(tok.jti) and known[tok.jti].revoked_at)
        ]
        return JobUpdate(
            job_id=job.job_id,
            expected_version=version,
            state=job.state,
            document=job.to_json(),
            chain=t.records,
            approvals=_new_approvals(before, job),
            tokens=tokens,
            revocations=revocations,
            idempotency_key=key,
            idempotency_result=outcome.to_json() if key else None,
        )

    # ------------------------------------------------------------------- effects

    async def _perform(self, before: Job | None, t: Transition) -> list[ChatEvent]:
        """Perform the transition's effects on the job's machinery (fast: tasks are spawned,
        not awaited); return what people should be told, for after the lock."""
        _count(before, t)
        for tok in t.job.tokens:
            if tok.revoked_at is not None:
                self.revoked.add(tok.jti)
        job_doc = t.job.to_json()
        now = self.clock()
        events = [ChatEvent("receipts", job_doc, {}, t.records, now)] if t.records else []
        for effect in t.effects:
            event = await self._effect(t.job, job_doc, effect, now)
            if event is not None:
                events.append(event)
        return events

    async def _publish(self, job_id: str, events: list[ChatEvent]) -> None:
        if not events:
            return
        async with self._chat_locks.setdefault(job_id, asyncio.Lock()):  # keeps posts in order
            for event in events:
                await self.notifier.publish(event)

    async def _effect(
        self, job: Job, doc: Mapping[str, Any], effect: Effect, now: datetime
    ) -> ChatEvent | None:
        kind = effect.kind
        if kind == lifecycle.PUBLISH_POLICY and job.policy_envelope is not None:
            await self.store.put_policy(job.plan.plan_hash, job.policy_envelope)
        elif kind == lifecycle.START_EXECUTOR and self.executor is not None:
            await self.executor.start(doc, self.token_for(job, TokenKind.AGENT))
        elif kind == lifecycle.REFRESH_EXECUTOR and self.executor is not None:
            await self.executor.refresh(doc, self.token_for(job, TokenKind.AGENT))
        elif kind == lifecycle.HALT_EXECUTOR and self.executor is not None:
            self._background(self.executor.halt(job.job_id))
        elif kind == lifecycle.RUN_ROLLBACK:
            self._spawn_rollback(job.job_id)
        if kind == lifecycle.FINISH:
            bundle = await self.write_bundle(job)
            return ChatEvent(kind, doc, effect.detail, (), now, bundle)
        if kind in CHAT_EFFECTS:
            return ChatEvent(kind, doc, effect.detail, (), now)
        return None

    def _background(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def bundle(self, job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
        records = await self.store.chain(job.job_id)
        return bundle_for_job(job, records, self.keys, parse_iso(job.ended_at or job.created_at))

    async def write_bundle(self, job: Job) -> dict[str, Any]:
        bundle, pulse = await self.bundle(job)
        if self.bundle_dir is not None:
            self.bundle_dir.mkdir(parents=True, exist_ok=True)
            (self.bundle_dir / f"{job.job_id}.bundle.json").write_bytes(jcs(bundle))
            (self.bundle_dir / f"{job.job_id}.trust_pulse.json").write_bytes(jcs(pulse))
        return bundle

    # ------------------------------------------------------------------ rollback

    def _spawn_rollback(self, job_id: str) -> None:
        running = self._rollbacks.get(job_id)
        if running is not None and not running.done():
            return
        task = asyncio.ensure_future(self._rollback(job_id))
        self._rollbacks[job_id] = task
        self.tasks.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            self.tasks.discard(done)
            if self._rollbacks.get(job_id) is done:
                del self._rollbacks[job_id]

        task.add_done_callback(forget)

    async def _rollback(self, job_id: str) -> None:
        """Halt the agent, run each planned rollback step (retrying with backoff), then the
        planned verification read, and report the result as a command."""
        try:
            await run_rollback(self, job_id)
        except Exception:
            log.exception(
                "rollback runner for %s crashed; the next tick retries",
                job_id,
                extra={"job_id": job_id},
            )


def _count(before: Job | None, t: Transition) -> None:
    for record in t.records:
        env = record.envelope
        if env and env["envelope_type"] == "human_approval_receipt":
            metrics.APPROVALS.labels(env["payload"]["approval_type"]).inc()
    was = before.state if before else None
    if t.job.state == ROLLING_BACK and was != ROLLING_BACK and t.job.end_reason in KILL_REASONS:
        metrics.KILLS.labels(t.job.end_reason).inc()
    if t.job.state == FAILED and was != FAILED:
        metrics.ROLLBACK_FAILURES.inc()


def _replayed(cached: Mapping[str, Any]) -> Outcome:
    return Outcome(
        ok=bool(cached.get("ok", True)),
        job_id=str(cached.get("job_id", "")),
        result=cached.get("result", {}),
        reason=str(cached.get("reason", "")),
        detail=str(cached.get("detail", "")),
        replayed=True,
    )


def _epoch_dt(value: Any) -> datetime:
    return from_epoch(int(value))


def _revocation_record(t: Transition, jti: str) -> Mapping[str, Any]:
    for record in t.records:
        env = record.envelope
        if env and env["envelope_type"] == "breakglass_revocation" and env["payload"]["jti"] == jti:
            return env
    return {}


def _new_approvals(before: Job | None, job: Job) -> list[ApprovalRecord]:
    seen = set()
    if before is not None:
        for plan in (before.plan, before.extension):
            if plan is not None:
                seen |= {d.receipt_id for d in plan.decisions}
    out = []
    for plan in (job.plan, job.extension):
        if plan is None:
            continue
        for d in plan.decisions:
            if d.receipt_id not in seen:
                seen.add(d.receipt_id)
                out.append(
                    ApprovalRecord(
                        job.job_id,
                        d.principal,
                        d.chat_identity,
                        d.decision,
                        d.plan_hash,
                        parse_iso(d.at),
                        d.receipt_id,
                    )
                )
    return out
