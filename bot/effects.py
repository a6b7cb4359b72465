"""A committed transition's effects on the job's machinery: publish the policy, start, refresh
or halt the executor, start the rollback runner, write the bundle files; and what people
should be told, returned as chat events for after the job's lock is released."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import metrics
from engine import lifecycle
from engine.canonical import jcs
from engine.cst import TokenKind
from engine.job import FAILED, KILL_REASONS, ROLLING_BACK, Job
from engine.lifecycle import Effect, Transition
from engine.ports import ChatEvent
from engine.proof import bundle_for_job
from engine.timeutil import parse_iso

if TYPE_CHECKING:
    from bot.service import JobService

log = logging.getLogger("breakglass.service")

CHAT_EFFECTS = {
    lifecycle.ASK_APPROVERS,
    lifecycle.UPDATE_CARDS,
    lifecycle.ANNOUNCE,
    lifecycle.NOTICE,
    lifecycle.FINISH,
    lifecycle.ESCALATE,
}


class Effects:
    def __init__(self, service: JobService, bundle_dir: Path | None) -> None:
        self.service = service
        self.bundle_dir = bundle_dir

    async def perform(
        self, before: Job | None, t: Transition, job_doc: Mapping[str, Any] | None = None
    ) -> list[ChatEvent]:
        """Perform the transition's effects (fast: long work is spawned, not awaited);
        return what people should be told. ``job_doc``: ``t.job`` as JSON, when known."""
        _count(before, t)
        for tok in t.job.tokens:
            if tok.revoked_at is not None:
                self.service.revoked.add(tok.jti)
        job_doc = job_doc if job_doc is not None else t.job.to_json()
        now = self.service.clock()
        events = [ChatEvent("receipts", job_doc, {}, t.records, now)] if t.records else []
        for effect in t.effects:
            event = await self._effect(t.job, job_doc, effect, now)
            if event is not None:
                events.append(event)
        return events

    async def _effect(
        self, job: Job, doc: Mapping[str, Any], effect: Effect, now: datetime
    ) -> ChatEvent | None:
        kind = effect.kind
        service = self.service
        executor = service.executor
        if kind == lifecycle.PUBLISH_POLICY and job.policy_envelope is not None:
            await service.store.put_policy(job.plan.plan_hash, job.policy_envelope)
        elif kind == lifecycle.START_EXECUTOR and executor is not None:
            if await service.leases.take(job.job_id):  # else the lease holder's tick starts it
                await executor.start(doc, service.token_for(job, TokenKind.AGENT))
        elif kind == lifecycle.REFRESH_EXECUTOR and executor is not None:
            await executor.refresh(doc, service.token_for(job, TokenKind.AGENT))
        elif kind == lifecycle.HALT_EXECUTOR and executor is not None:
            service.tasks.spawn(executor.halt(job.job_id), f"halt:{job.job_id}")
        elif kind == lifecycle.RUN_ROLLBACK:
            service.rollbacks.spawn(job.job_id)
        if kind == lifecycle.FINISH:
            bundle = await self.write_bundle(job)
            return ChatEvent(kind, doc, effect.detail, (), now, bundle)
        if kind in CHAT_EFFECTS:
            return ChatEvent(kind, doc, effect.detail, (), now)
        return None

    async def bundle(self, job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
        records = await self.service.store.chain(job.job_id)
        keys = self.service.keys
        return bundle_for_job(job, records, keys, parse_iso(job.ended_at or job.created_at))

    async def write_bundle(self, job: Job) -> dict[str, Any]:
        """The job's bundle, its files written too. Files that cannot be written (a full or
        read-only disk) are an ERROR, not the end's: the job has ended, its record is in the
        store, and people must still be told (the console serves the bundle from the store)."""
        bundle, pulse = await self.bundle(job)
        if self.bundle_dir is not None:  # disk writes off the event loop
            try:
                await asyncio.to_thread(_write_files, self.bundle_dir, job.job_id, bundle, pulse)
            except OSError as exc:
                log.error(
                    "bundle files of %s not written to %s (%s); the bundle is in the store: "
                    "GET /console/api/jobs/%s/bundle",
                    job.job_id,
                    self.bundle_dir,
                    f"{type(exc).__name__}: {exc.strerror or exc}",
                    job.job_id,
                    extra={"job_id": job.job_id},
                )
        return bundle


def _write_files(
    directory: Path, job_id: str, bundle: Mapping[str, Any], pulse: Mapping[str, Any]
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{job_id}.bundle.json").write_bytes(jcs(bundle))
    (directory / f"{job_id}.trust_pulse.json").write_bytes(jcs(pulse))


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
