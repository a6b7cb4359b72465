"""The rollback runner: after the agent's token is revoked, undo the privileged step under
the engine's own rollback-only token, verify, and report the result to the job."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from engine.cst import TokenKind
from engine.job import ROLLING_BACK, Job, describe_grant
from engine.lifecycle import RenewRollback, RollbackFinished
from engine.timeutil import epoch

if TYPE_CHECKING:
    from bot.service import JobService

log = logging.getLogger("breakglass.rollback")
RENEW_MARGIN_SECONDS = 60
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0)


async def run_rollback(service: JobService, job_id: str) -> None:
    job = await service.load(job_id)
    if job.state != ROLLING_BACK:
        return
    if service.executor is not None:
        await service.executor.halt(job_id)
    if service.gateway is not None:
        await service.gateway.settle(job_id)  # nothing of the agent's may land after us
    job = await _fresh_token(service, job)
    terms: Any = job.plan.payload["metadata"]["breakglass"]
    if job.write_done and job.verified_after_write is None:
        # Killed between the write and its read: do the planned read now, before undoing,
        # so the record shows what was granted (the rollback token may read).
        await _call_ok(service, job, terms["verify_action"])
    attempts, undone = 0, True
    for step in terms["rollback"]["steps"]:
        ok, used = await _run_step(service, job, step)
        attempts += used
        undone = undone and ok
    verified = await _call_ok(service, job, terms["rollback"]["verify"])
    still = () if verified and undone else (describe_grant(job),)
    if still:
        log.error(
            "ESCALATION job %s: rollback not verified; still privileged: %s",
            job_id,
            still[0],
            extra={"job_id": job_id, "escalation": True},
        )
    outcome = await service.command(
        job_id,
        RollbackFinished(verified=verified and undone, still_privileged=still, attempts=attempts),
        key=f"{job_id}:rollback-finished:{job.ended_at}",
    )
    if not outcome.ok:
        log.warning(
            "rollback result for %s not applied: %s",
            job_id,
            outcome.reason,
            extra={"job_id": job_id},
        )


async def _fresh_token(service: JobService, job: Job) -> Job:
    token = job.token(TokenKind.ROLLBACK)
    now = epoch(service.clock())
    if token is None or token.revoked_at or int(token.claims["exp"]) - now < RENEW_MARGIN_SECONDS:
        await service.command(job.job_id, RenewRollback())
        job = await service.load(job.job_id)
    return job


async def _run_step(service: JobService, job: Job, step: Any) -> tuple[bool, int]:
    """One rollback step, retried with backoff; refusals are final (retrying cannot help)."""
    for attempt, pause in enumerate(BACKOFF_SECONDS[: service.rules.rollback_max_attempts], 1):
        job = await _fresh_token(service, job)
        assert service.gateway is not None
        outcome = await service.gateway.call(
            job.job_id, service.token_for(job, TokenKind.ROLLBACK), step["tool"], step["arguments"]
        )
        if outcome.allowed and outcome.status == "success":
            return True, attempt
        if not outcome.allowed:
            log.error(
                "rollback step %s for %s refused: %s", step["tool"], job.job_id, outcome.reason
            )
            return False, attempt
        await service.sleep(pause)
    return False, service.rules.rollback_max_attempts


async def _call_ok(service: JobService, job: Job, call: Any) -> bool:
    ok, _ = await _run_step(service, job, call)
    return ok
