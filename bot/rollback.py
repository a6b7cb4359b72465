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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.activity_read import read_activity
from engine.containment import (
    derived_steps,
    describe_left,
    end_steps,
    is_unrecorded_step,
    unrecorded_left,
)
from engine.cst import TokenKind
from engine.errors import AdapterError, InputError
from engine.job import ROLLING_BACK, Job, describe_grant
from engine.lifecycle import RemovalDelayed, RenewRollback, RollbackFinished
from engine.timeutil import epoch, parse_iso

if TYPE_CHECKING:
    from bot.gateway_service import GatewayOutcome
    from bot.service import JobService

log = logging.getLogger("breakglass.rollback")
RENEW_MARGIN_SECONDS = 60
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # then every 30 s until the budget is spent
MAX_ATTEMPTS_PER_STEP = 64  # a backstop for a clock that never moves
SETTLE_RECHECK_SECONDS = 30.0  # removal and read again this often while replication settles
MAX_SETTLE_ROUNDS = 16  # 300 s of settle at 30 s a round is 10; a backstop for a stuck clock
REMOVAL_NOT_YET_ALLOWED = "REMOVAL_NOT_YET_ALLOWED"
PRINCIPAL_DELETED = "PRINCIPAL_DELETED"
NEVER = datetime.min.replace(tzinfo=UTC)


class LeaseLost(Exception):
    """Another replica runs this job now: this runner stops before its next call."""


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
            if not await self.service.leases.keep(job_id):
                return  # another live replica runs this rollback
            await run_rollback(self.service, job_id)
        except LeaseLost:
            log.warning("rollback of %s left to the replica now holding its lease", job_id)
        except Exception as exc:  # the store or the process failed us: the next tick retries
            self._crashed(job_id, exc)
            await self._end_if_spent(job_id)
        else:
            self._failing.pop(job_id, None)

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
    """Halt the agent, undo (or find nothing to undo), verify, report as a command."""
    job = await service.load(job_id)
    if job.state != ROLLING_BACK:
        return
    await _halt(service, job_id)
    if service.gateway is not None:
        await service.gateway.settle(job_id)  # nothing of the agent's may land after us
    job = await service.load(job_id)
    run = _Run(service, job, _deadline(service, job))
    verified = await run.undo_and_verify()
    left = await run.contain_at_end()
    still = (() if verified else (run.describe_grant(),)) + left
    if still:
        log.error(
            "ESCALATION job %s: rollback not verified or not contained; still: %s",
            job_id,
            "; ".join(still),
            extra={"job_id": job_id, "escalation": True},
        )
    # What the privilege was used for (issue 17 §5): bounded, never blocks the end. Only
    # when a rollback step had to run: else nothing was ever granted.
    used = await read_activity(run.job, service.clock(), run.call) if run.attempts else None
    outcome = await service.command(
        job_id,
        RollbackFinished(
            verified=verified, still_privileged=still, attempts=run.attempts, activity=used
        ),
        key=_finish_key(job),
    )
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


@dataclass
class _Run:
    """One rollback: the job as last seen, the deadline, the calls made so far."""

    service: JobService
    job: Job
    deadline: datetime
    attempts: int = 0  # calls of the rollback steps proper
    announced: datetime | None = None  # the not_before already told to the channel
    contained: tuple[str, ...] | None = None  # containment done (the tools that succeeded)
    last: GatewayOutcome | None = None  # the latest call's outcome
    seen_ours: bool = False  # a removal saw the job's own grant in the tenant
    undone: bool = False  # the last round of rollback steps all succeeded
    read_at: datetime = NEVER  # when the last read began
    deleted: str | None = None  # the principal was deleted: until when its role may return

    @property
    def terms(self) -> Any:
        return self.job.plan.payload["metadata"]["breakglass"]

    def describe_grant(self) -> str:
        """What the window may have left privileged, with why when its principal is gone."""
        grant = describe_grant(self.job)
        if self.deleted is None:
            return grant
        return (
            f"{grant}: the principal was deleted during the window and no removal can run; "
            f"restoring it from deleted items before {self.deleted} brings the role back"
        )

    async def undo_and_verify(self) -> bool:
        job, terms = self.job, self.terms
        if not job.may_have_written and await self.nothing_granted():
            return True
        if job.write_done and job.verified_after_write is None:
            # Ended between the write and its read: do the planned read now, before undoing,
            # so the record shows what was granted (the rollback token may read).
            await self.once(terms["verify_action"])
        verified = await self.undo_then_read()
        if verified and not self.undone:
            # A step's own read-back disagreed (a lagging replica, an answer lost) though the
            # read shows it undone: run the steps again, now a no-op that succeeds, and read
            # once more, so the record holds what the verifier requires after a write.
            log.warning("rollback step failed for %s, but the read shows it undone", job.job_id)
            verified = await self.undo_then_read() and self.undone
        return await self.settled(verified)

    async def undo_then_read(self) -> bool:
        """The rollback steps, then the planned read: is the grant gone? (``self.undone``:
        did every step succeed; ``self.read_at``: when the read began.)"""
        self.undone = await self.steps()
        self.read_at = self.service.clock()
        return await self.until_done(self.terms["rollback"]["verify"])

    async def settled(self, verified: bool) -> bool:
        """Absence read too soon after a write that may have landed proves nothing: remove
        and read again until a removal sees our grant, or the absence is read at least
        ``replication_settle`` after the window's end (False when the budget ends first)."""
        if not verified or not self.job.may_have_written:
            return verified
        until = parse_iso(self.job.ended_at or self.job.created_at)
        until += self.service.rules.replication_settle
        if not self.seen_ours and self.read_at < until:
            job_id = self.job.job_id
            log.info(
                "rollback of %s waits for replication to show its write",
                job_id,
                extra={"job_id": job_id},
            )
        for _ in range(MAX_SETTLE_ROUNDS):
            if self.seen_ours or self.read_at >= until:
                return True
            wait = (until - self.service.clock()).total_seconds()
            if wait > 0 and not await self.pause(min(wait, SETTLE_RECHECK_SECONDS)):
                return False
            if not (await self.undo_then_read() and self.undone):
                return False
        return False  # the clock never reached the settle time: absence is not proven

    async def steps(self) -> bool:
        undone = True
        for step in self.terms["rollback"]["steps"]:
            undone = await self.until_done(step, removal=True) and undone
        return undone

    async def nothing_granted(self) -> bool:
        """No write was recorded as sent: is the rollback trivially done? One read decides (no
        removal, which would poll for a request that may never have been sent). A crash may
        have lost a write's receipt, so "no receipt" alone never proves "never sent"."""
        outcome = await self.call(self.terms["rollback"]["verify"])
        if outcome.allowed and outcome.status == "success":
            return True  # the tenant shows nothing granted
        # The read's own targets were refused before sending, like every write of ours:
        # they name nothing in the tenant, so nothing of ours can be there.
        unsent = outcome.allowed and outcome.result.get("sent") is False
        return unsent and not self.job.may_have_written

    async def once(self, step: Mapping[str, Any]) -> bool:
        outcome = await self.call(step)
        return outcome.allowed and outcome.status == "success"

    async def until_done(self, step: Mapping[str, Any], removal: bool = False) -> bool:
        """A step, retried with backoff until it succeeds, is refused (retrying cannot
        help), a read answers definitively, or the budget is spent."""
        for tries in range(MAX_ATTEMPTS_PER_STEP):
            self.attempts += removal
            outcome = self.last = await self.call(step)
            # A removal says whether the tenant showed it this job's grant: then the job's
            # write is visible, and what later reads say about it can be believed.
            self.seen_ours |= removal and _saw_ours(outcome)
            if removal:
                self.deleted = None  # until this removal says so again (a restore, say)
            if outcome.allowed and outcome.status == "success":
                return True
            if outcome.allowed and outcome.result.get("sent") is False:
                return False  # the adapter refused its arguments: retrying cannot help
            if not outcome.allowed:
                log.error(
                    "rollback step %s for %s refused: %s",
                    step["tool"],
                    self.job.job_id,
                    outcome.reason,
                )
                return False
            if outcome.result.get("verified") is False and "error" not in outcome.result:
                return False  # the tenant answered: it does not look as planned
            not_before = _not_before(outcome.result)
            if not_before is not None:
                if not await self.wait_for_removal(not_before):
                    return False
                continue
            if outcome.result.get("error") == PRINCIPAL_DELETED:
                if not await self.wait_while_deleted(outcome.result.get("lapses_at")):
                    return False
                continue
            if not await self.pause(BACKOFF_SECONDS[min(tries, len(BACKOFF_SECONDS) - 1)]):
                return False
        return False

    async def wait_for_removal(self, not_before: datetime) -> bool:
        """Contain first, tell the channel, wait until ``not_before`` (if the budget allows)."""
        if self.contained is None:
            self.contained = await self.contain()
        if self.announced != not_before:
            self.announced = not_before
            delayed = RemovalDelayed(not_before=not_before, contained=self.contained)
            await self.service.command(self.job.job_id, delayed)
        if not_before > self.deadline:
            log.error("removal for %s not allowed before the rollback budget ends", self.job.job_id)
            return False
        await self.service.sleep(max((not_before - self.service.clock()).total_seconds(), 0.0))
        return True

    async def wait_while_deleted(self, lapses_at: object) -> bool:
        """The principal is deleted and its role would come back with a restore until
        ``lapses_at``: wait for that (trying again now and then: a restore makes the
        removal possible) if the budget allows; else False at once."""
        self.deleted = str(lapses_at or "its grant's end (unknown)")
        try:
            lapses = parse_iso(lapses_at)
        except InputError:
            lapses = None
        if lapses is None or lapses > self.deadline:
            log.error(
                "the principal of %s was deleted; its role may return until %s, after the "
                "rollback budget",
                self.job.job_id,
                self.deleted,
            )
            return False
        wait = (lapses - self.service.clock()).total_seconds()
        return await self.pause(min(max(wait, BACKOFF_SECONDS[0]), SETTLE_RECHECK_SECONDS))

    async def contain(self) -> tuple[str, ...]:
        """The WPC's containment steps (e.g. revoke the principal's sessions), each tried
        once: the removal is what the budget is for."""
        steps = self.terms["rollback"].get("containment", ())
        done = [str(step["tool"]) for step in steps if await self.once(step)]
        return tuple(done)

    async def contain_at_end(self) -> tuple[str, ...]:
        """Run every end-of-window containment step (each retried within the budget, like
        a removal); what did not run, in plain words. Sessions are revoked here even when
        containment already revoked them: they may have been re-established since."""
        self.job = await self.service.load(self.job.job_id)  # every derived step recorded
        left = []
        derived = derived_steps(self.job.derived_rollback)
        # No write left our hands and nothing had to be removed: the window granted nothing,
        # so the planned steps have nothing to contain (what the window created still goes).
        granted = self.job.may_have_written or self.attempts > 0
        marks = self.job.credentials_in_flight
        for step in end_steps(self.terms, self.job.derived_rollback, marks):
            if is_unrecorded_step(step["tool"], step["arguments"]):
                await self.until_swept(step)  # what stays in doubt is named below
                continue
            planned = step not in derived  # a derived step names what the tenant created
            if planned and not granted:
                continue
            if not await self.until_done(step) and not (planned and self._names_nothing()):
                log.error("containment step %s for %s did not run", step["tool"], self.job.job_id)
                left.append(describe_left(step))
        return (*left, *self.unrecorded())

    async def until_swept(self, step: Mapping[str, Any]) -> None:
        """Remove every password the job marked on the step's application, again until the
        job no longer holds a credential write in doubt there (its receipt found as many as
        were in doubt, or began once replication had time to show them: the engine judges,
        ``engine.containment.after_sweep``), or the budget is spent."""
        job_id, where = self.job.job_id, step["arguments"]
        settle_at = parse_iso(self.job.ended_at or self.job.created_at)
        settle_at += self.service.rules.replication_settle
        for _ in range(MAX_SETTLE_ROUNDS):
            if not await self.until_done(step):
                return
            self.job = await self.service.load(job_id)
            if not any(_on(where, mark) for mark in self.job.credentials_in_flight):
                return
            log.info(
                "removal of %s's unrecorded passwords waits for replication",
                job_id,
                extra={"job_id": job_id},
            )
            wait = (settle_at - self.service.clock()).total_seconds()
            if not await self.pause(min(max(wait, 0.0), SETTLE_RECHECK_SECONDS)):
                return

    def unrecorded(self) -> tuple[str, ...]:
        """Credential writes that left the gateway and whose receipt never said what they
        created (a crash, or a store that refused it), and whose application the removal of
        every password the job marked could not settle: named (ADR 0020)."""
        left = unrecorded_left(self.job.credentials_in_flight)
        if left:
            log.error(
                "job %s: credential writes sent and never recorded may have left: %s",
                self.job.job_id,
                "; ".join(left),
                extra={"job_id": self.job.job_id},
            )
        return left

    def _names_nothing(self) -> bool:
        """The last step's arguments were refused before sending (a principal given as
        something other than an object id): like the write that named it, it never reached
        the tenant, so the window gave that principal nothing to contain."""
        last = self.last
        return last is not None and last.allowed and last.result.get("sent") is False

    async def pause(self, seconds: float) -> bool:
        """Back off before the next try; False when the budget is spent."""
        left = (self.deadline - self.service.clock()).total_seconds()
        if left <= 0:
            return False
        await self.service.sleep(min(seconds, left))
        return True

    async def call(self, step: Mapping[str, Any]) -> GatewayOutcome:
        gateway = self.service.gateway
        assert gateway is not None
        if not await self.service.leases.keep(self.job.job_id):
            raise LeaseLost(self.job.job_id)  # never two replicas calling for one job
        token = await self.token()
        return await gateway.call(self.job.job_id, token, step["tool"], step["arguments"])

    async def token(self) -> str:
        """The rollback token, renewed only when missing, revoked or near its expiry."""
        token = self.job.token(TokenKind.ROLLBACK)
        now = epoch(self.service.clock())
        if token is not None and token.revoked_at is None:
            exp, iat = int(token.claims["exp"]), int(token.claims["iat"])
            if exp - now >= min(RENEW_MARGIN_SECONDS, (exp - iat) // 4):
                return self.service.token_for(self.job, TokenKind.ROLLBACK)
        await self.service.command(self.job.job_id, RenewRollback())
        self.job = await self.service.load(self.job.job_id)
        return self.service.token_for(self.job, TokenKind.ROLLBACK)


def _on(arguments: Mapping[str, Any], mark: Mapping[str, Any]) -> bool:
    """Does a credential write in doubt name the application a step names?"""
    return all(mark.get(k) == arguments.get(k) for k in ("tenant_id", "application_id"))


def _saw_ours(outcome: GatewayOutcome | None) -> bool:
    return outcome is not None and outcome.allowed and outcome.result.get("ours_seen") is True


def _not_before(result: Mapping[str, Any]) -> datetime | None:
    """When the tenant will allow the removal, if this result is its early-removal refusal."""
    if result.get("error") != REMOVAL_NOT_YET_ALLOWED:
        return None
    try:
        return parse_iso(str(result.get("not_before", "")))
    except (InputError, ValueError):
        return None
