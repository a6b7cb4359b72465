"""The rollback runner: after the agent's token is revoked, undo the privileged step under
the engine's own rollback-only token, verify, and report the result to the job.

It keeps trying for a budget of time (``Rules.rollback_budget``), not a number of attempts,
and keeps one rollback token until it nears expiry. A write that never left us needs no
undoing; one that failed but may have landed is read first. When the tenant refuses an early
removal (``REMOVAL_NOT_YET_ALLOWED`` with ``not_before``), the runner contains the principal
with the WPC's containment steps, tells the channel when removal becomes possible, waits on
the service's clock and removes then, all inside the job. After the removal, every window
end contains what the window touched (``engine.containment``): credentials created during
the window are removed by the steps their writes derived, then the principal's sign-in
sessions are revoked where the template says so. A credential write sent without a receipt
that says what it created (a crash, a store refusing it) derives no removal: every password
the job marked on its application is removed instead, and what that cannot settle ends the
job ``failed`` naming the application (ADR 0020). A budget spent ends the job ``failed``
with an escalation naming what is still privileged or was not contained.

A principal deleted during the window keeps its role in deleted items, and a restore brings
it back until the grant's own schedule ends (docs/graph.md): no removal can run meanwhile.
The runner then waits for that end within the budget, trying the removal now and then (a
restore makes it possible again), or, when the end lies beyond the budget, stops at once and
ends the job ``failed`` naming the dormant role: retrying cannot help.

Entra is eventually consistent: a read may miss a write that landed. So after a write that
may have reached the tenant, "nothing to undo" is believed only once a removal has seen the
job's own grant (and removed it), or absence still holds when read the settle time
(``Rules.replication_settle``) after the window's end; until then the runner keeps removing
and reading (ADR 0013)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.activity_read import read_activity
from bot.rollback_run import LeaseLost, RollbackRun
from engine.containment import (
    derived_steps,
    describe_left,
    end_steps,
    unrecorded_left,
)
from engine.errors import AdapterError, StoreError
from engine.job import ROLLING_BACK, Job, describe_grant
from engine.lifecycle import RollbackFinished
from engine.timeutil import parse_iso

if TYPE_CHECKING:
    from bot.held_records import HeldRecords
    from bot.service import JobService

log = logging.getLogger("breakglass.rollback")


class RollbackRunner:
    """At most one rollback task per job, tracked with the service's other tasks."""

    def __init__(self, service: JobService) -> None:
        self.service = service
        self._running: dict[str, asyncio.Task[None]] = {}
        self._failing: dict[str, str] = {}  # job → the error its runner last failed with

    def running(self, job_id: str) -> bool:
        task = self._running.get(job_id)
        return task is not None and not task.done()

    def spawn(self, job_id: str) -> None:
        if self.running(job_id):
            return
        task = self.service.tasks.spawn(self._guarded(job_id), f"rollback:{job_id}")
        self._running[job_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._running.get(job_id) is done:
                del self._running[job_id]

        task.add_done_callback(forget)

    async def _guarded(self, job_id: str) -> None:
        try:
            if not await self._leased(job_id):
                return
            await run_rollback(self.service, job_id)
        except LeaseLost:
            log.warning("rollback of %s left to the replica now holding its lease", job_id)
            if (held := held_records(self.service)) is not None:
                held.forget(job_id)  # it runs the steps again, receipted
        except Exception as exc:  # the store or the process failed us: the next tick retries
            self._crashed(job_id, exc)
            await self._end_if_spent(job_id)
        else:
            self._failing.pop(job_id, None)

    async def _leased(self, job_id: str) -> bool:
        """Does this replica run the rollback now? Not when another live replica holds its
        lease. Nor when nobody can take the lease, as the store refuses writes: then its
        removal runs here all the same, unrecorded (ADR 0021), so a replica that died during
        the outage does not leave the privilege in place until the disk has room."""
        try:
            return await self.service.leases.keep(job_id)
        except StoreError as refused:
            await self.service.unrecorded.rollback_unleased(job_id, refused)
            return False

    def _crashed(self, job_id: str, exc: Exception) -> None:
        """The traceback once per job and error; the same error again is one line."""
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
        if self._failing.get(job_id) == error:
            log.warning("rollback runner for %s failed again (%s)", job_id, error)
            return
        self._failing[job_id] = error
        if isinstance(exc, AdapterError):  # an outside fault (a store outage): no traceback
            log.error(
                "rollback runner for %s failed (%s); the next tick retries until its budget "
                "is spent",
                job_id,
                error,
                extra={"job_id": job_id},
            )
            return
        log.exception(
            "rollback runner for %s crashed; the next tick retries until its budget is spent",
            job_id,
            extra={"job_id": job_id},
        )

    async def _end_if_spent(self, job_id: str) -> None:
        """A runner that keeps failing must not hold its job open for ever (the first law):
        once the rollback budget is spent, the job ends ``failed``, naming everything the
        window may have left privileged, as a runner that ran out of budget would."""
        try:
            job = await self.service.load(job_id)
            if job.state != ROLLING_BACK or self.service.clock() < _deadline(self.service, job):
                return
            if (held := held_records(self.service)) is not None:
                if held.verdict_held(job_id):
                    return  # the rollback has run: its own verdict waits for the store
                await held.flush(job_id)  # what the calls did, before the verdict
            still = may_remain(job)
            log.error(
                "ESCALATION job %s: its rollback kept failing until its budget was spent "
                "(%s); still: %s",
                job_id,
                self._failing.get(job_id, "?"),
                "; ".join(still),
                extra={"job_id": job_id, "escalation": True},
            )
            finished = RollbackFinished(verified=False, still_privileged=still, attempts=0)
            await self.service.command(job_id, finished, key=_finish_key(job))
            self._failing.pop(job_id, None)
        except Exception as exc:  # the store is down too: the next tick tries again
            log.warning("rollback of %s not ended yet: %s", job_id, type(exc).__name__)


async def run_rollback(service: JobService, job_id: str) -> None:
    """Halt the agent, undo (or find nothing to undo), verify, report as a command. What an
    earlier round could not record (a full disk) is recorded first: a round whose verdict
    was held ends with it, sending nothing again (``bot.held_records``)."""
    job = await service.load(job_id)
    held = held_records(service)
    if job.state != ROLLING_BACK:
        if held is not None:
            held.forget(job_id)
        return
    if held is not None and await held.flush(job_id):
        return
    await _halt(service, job_id)
    if service.gateway is not None:
        await service.gateway.settle(job_id)  # nothing of the agent's may land after us
    job = await service.load(job_id)
    run = RollbackRun(service, job, _deadline(service, job))
    verified = await run.undo_and_verify()
    left = await run.contain_at_end()
    still = (() if verified else (run.describe_grant(),)) + left
    refused = run.refusal(verified) if still else None
    if still:
        log.error(
            "ESCALATION job %s: rollback not verified or not contained; still: %s%s",
            job_id,
            "; ".join(still),
            f"; last refusal: {refused}" if refused else "",
            extra={"job_id": job_id, "escalation": True},
        )
    # What the privilege was used for (issue 17 §5): bounded, never blocks the end. Only
    # when a rollback step had to run: else nothing was ever granted.
    used = await read_activity(run.job, service.clock(), run.call) if run.attempts else None
    verdict = RollbackFinished(
        verified=verified,
        still_privileged=still,
        attempts=run.attempts,
        activity=used,
        refused=refused or "",
    )
    try:
        if held is not None:
            await held.flush(job_id)  # the receipts before the verdict that closes the chain
        outcome = await service.command(job_id, verdict, key=_finish_key(job))
    except StoreError:
        if held is None:
            raise
        held.hold_verdict(job_id, verdict, _finish_key(job))
        raise
    if not outcome.ok:
        log.warning(
            "rollback result for %s not applied: %s",
            job_id,
            outcome.reason,
            extra={"job_id": job_id},
        )


async def _halt(service: JobService, job_id: str) -> None:
    """Stop the agent before undoing. An agent that cannot be stopped, or not in time, does
    not hold the rollback: its token is revoked, so each call it still makes is refused."""
    if service.executor is None:
        return
    halt = service.tasks.spawn(service.executor.halt(job_id), f"halt:{job_id}")
    waited = service.rules.halt_wait.total_seconds()
    if not (await asyncio.wait({halt}, timeout=waited))[0]:
        log.error(
            "the agent of %s did not stop within %g s; the rollback goes on (its token is "
            "revoked: every call it makes is refused)",
            job_id,
            waited,
            extra={"job_id": job_id},
        )
    elif not halt.cancelled() and (exc := halt.exception()) is not None:
        log.error(
            "the agent of %s could not be stopped (%s); the rollback goes on (its token is "
            "revoked: every call it makes is refused)",
            job_id,
            type(exc).__name__,
            extra={"job_id": job_id},
        )


def held_records(service: JobService) -> HeldRecords | None:
    """The rollback's receipts and verdicts its gateway holds while the store refuses them."""
    return service.gateway.held if service.gateway is not None else None


def _deadline(service: JobService, job: Job) -> datetime:
    """When the rollback's budget is spent (counted from the window's end)."""
    return parse_iso(job.ended_at or job.created_at) + service.rules.rollback_budget


def _finish_key(job: Job) -> str:
    """One verdict per rollback, whichever path reports it."""
    return f"{job.job_id}:rollback-finished:{job.ended_at}"


def may_remain(job: Job) -> tuple[str, ...]:
    """Everything a window may have left behind when nothing could be checked: the grant
    and what the end would have contained (if a write may have landed), and every
    credential the window created."""
    planned = (
        end_steps(job.plan.payload["metadata"]["breakglass"], ()) if job.may_have_written else []
    )
    granted = (describe_grant(job),) if job.may_have_written else ()
    steps = [*derived_steps(job.derived_rollback), *planned]
    left = granted + tuple(describe_left(step) for step in steps)
    return left + unrecorded_left(job.credentials_in_flight)
