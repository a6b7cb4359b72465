"""One rollback, step by step (``RollbackRun``): undo under the engine's rollback token,
verify, contain, within the budget that ``bot.rollback`` gives it. Apart from the runner,
which decides when a rollback runs and what a failing one ends as; the module docstring of
``bot.rollback`` says what a rollback does and why."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.graph.refusals import describe_gateway_refusal, describe_refusal
from engine.containment import (
    derived_steps,
    describe_left,
    end_steps,
    is_unrecorded_step,
    on_application,
    unrecorded_left,
)
from engine.cst import TokenKind
from engine.errors import InputError, StoreError
from engine.job import Job, describe_grant
from engine.lifecycle import RemovalDelayed, RenewRollback
from engine.lifecycle.commands import DELAYED_DELETED
from engine.timeutil import epoch, parse_iso

if TYPE_CHECKING:
    from bot.gateway_service import GatewayOutcome
    from bot.service import JobService

log = logging.getLogger("breakglass.rollback")
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # then every 30 s until the budget is spent
MAX_ATTEMPTS_PER_STEP = 64  # a backstop for a clock that never moves
SETTLE_RECHECK_SECONDS = 30.0  # removal and read again this often while replication settles
MAX_SETTLE_ROUNDS = 16  # 300 s of settle at 30 s a round is 10; a backstop for a stuck clock
REMOVAL_NOT_YET_ALLOWED = "REMOVAL_NOT_YET_ALLOWED"
PRINCIPAL_DELETED = "PRINCIPAL_DELETED"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"  # the gateway could not ask the store: not sent
NEVER = datetime.min.replace(tzinfo=UTC)
RENEW_MARGIN_SECONDS = 60


class LeaseLost(Exception):
    """Another replica runs this job now: this runner stops before its next call."""


@dataclass
class RollbackRun:
    """One rollback: the job as last seen, the deadline, the calls made so far."""

    service: JobService
    job: Job
    deadline: datetime
    attempts: int = 0  # calls of the rollback steps proper
    told: dict[str, datetime] = field(default_factory=dict)  # reason → not_before said
    contained: tuple[str, ...] | None = None  # containment done (the tools that succeeded)
    last: GatewayOutcome | None = None  # the latest call's outcome
    # Why the tenant last refused the undo (its steps or their read) and the end's
    # containment: what an escalation says beside what is left (``refusal``).
    undo_refused: str | None = None
    end_refused: str | None = None
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
        self.undo_refused = None  # a refusal of an earlier round says nothing of this one
        self.undone = await self.steps()
        self.read_at = self.service.clock()
        read = await self.until_done(self.terms["rollback"]["verify"])
        if not read:
            self.undo_refused = self.refused() or self.undo_refused
        return read

    async def settled(self, verified: bool) -> bool:
        """Absence read too soon after a write that may have landed proves nothing: remove
        and read again until a removal sees our grant, or the absence is read at least
        ``replication_settle`` after the window's end (False when the budget ends first)."""
        if not verified or not self.job.may_have_written:
            return verified
        until = self.job.replication_settled_at(self.service.rules.replication_settle)
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
            if not await self.until_done(step, removal=True):
                undone = False
                self.undo_refused = self.refused() or self.undo_refused
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
            # STORE_UNAVAILABLE: the gateway could not ask the store; tried again like a
            # passing failure of the tenant.
            if not outcome.allowed and outcome.reason != STORE_UNAVAILABLE:
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
        await self.tell(RemovalDelayed(not_before=not_before, contained=self.contained))
        if not_before > self.deadline:
            log.error("removal for %s not allowed before the rollback budget ends", self.job.job_id)
            return False
        await self.service.sleep(max((not_before - self.service.clock()).total_seconds(), 0.0))
        return True

    async def wait_while_deleted(self, lapses_at: object) -> bool:
        """The principal is deleted and its role would come back with a restore until
        ``lapses_at``: tell the channel (once per ``lapses_at``) and wait for that (trying
        again now and then: a restore makes the removal possible) if the budget allows; else
        False at once, and the job's ``failed`` end names the dormant role."""
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
        await self.tell(RemovalDelayed(not_before=lapses, reason=DELAYED_DELETED))
        wait = (lapses - self.service.clock()).total_seconds()
        return await self.pause(min(max(wait, BACKOFF_SECONDS[0]), SETTLE_RECHECK_SECONDS))

    async def tell(self, delayed: RemovalDelayed) -> None:
        """Tell the channel why the removal waits, once per reason and time (the wait may
        take many rounds). A notice: the wait and the removal must not depend on it."""
        if self.told.get(delayed.reason) == delayed.not_before:
            return
        self.told[delayed.reason] = delayed.not_before
        try:
            await self.service.command(self.job.job_id, delayed)
        except StoreError:
            log.warning(
                "the channel could not be told why the removal of %s waits (%s)",
                self.job.job_id,
                delayed.reason,
            )

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
                self.end_refused = self.refused() or self.end_refused
        return (*left, *self.unrecorded())

    async def until_swept(self, step: Mapping[str, Any]) -> None:
        """Remove every password the job marked on the step's application, again until the
        job no longer holds a credential write in doubt there (its receipt found as many as
        were in doubt, or began once replication had time to show them: the engine judges,
        ``engine.containment.after_sweep``), or the budget is spent."""
        job_id, where = self.job.job_id, step["arguments"]
        settle_at = self.job.replication_settled_at(self.service.rules.replication_settle)
        for _ in range(MAX_SETTLE_ROUNDS):
            if not await self.until_done(step):
                return
            self.job = await self.service.load(job_id)
            if not any(on_application(mark, where) for mark in self.job.credentials_in_flight):
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

    def refusal(self, verified: bool) -> str | None:
        """Why what is left is left, as the tenant last said it: the undo's refusal when the
        grant is named, else the end's containment's (None when neither was refused)."""
        return (None if verified else self.undo_refused) or self.end_refused

    def refused(self) -> str | None:
        """The last call's refusal (code, AADSTS number, hint), if it was one."""
        last = self.last
        if last is None:
            return None
        if not last.allowed:
            return describe_gateway_refusal(last.reason)
        return describe_refusal(last.result) if last.status != "success" else None

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
