"""Commands a job accepts, the effects a transition asks ``bot/`` to perform, and the
context (time, keys, rules) every transition runs in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.access import AccessRules
from engine.did import Signer
from engine.errors import CommandRefused
from engine.job import (
    Actor,
    Job,
    stamp,
)
from engine.ports import ChainRecord
from engine.stepup import StepUpEvidence
from engine.wpc import ModelAllowance

MAX_REFUSALS_KEPT = 100
MAX_EXTENSIONS = 4  # extension requests per job: keeps its bundle under the metadata cap


@dataclass(frozen=True)
class Keys:
    """The service's signing keys, one per role (see ``breakglass keys init``)."""

    publisher: Signer  # signs WPCs
    issuer: Signer  # signs CSTs and revocation records
    agent: Signer  # signs approval receipts, terminal records and proof bundles
    gateway: Signer  # signs tool and model-call receipts


@dataclass(frozen=True)
class Rules:
    """Configured policy of the service; what a request and an approval must satisfy."""

    approvers: frozenset[str]  # directory principals in the approver group
    requesters: frozenset[str] | None = None  # None: anyone in an incident channel
    pending_ttl: timedelta = timedelta(minutes=60)
    notice_every: timedelta = timedelta(minutes=5)
    notice_final_every: timedelta = timedelta(minutes=1)
    notice_final_stretch: timedelta = timedelta(minutes=5)
    rollback_token_ttl: timedelta = timedelta(minutes=10)
    # How long the rollback keeps trying before the job ends failed: PIM refuses to remove
    # an assignment in its first 5 minutes, so the default covers that rule plus margin.
    rollback_budget: timedelta = timedelta(minutes=8)
    # Entra is eventually consistent: a read may not show a write for a while. A rollback
    # that never saw the job's own write takes "absent" for proof only when read this long
    # after the window's end (every write of the job was sent before it).
    replication_settle: timedelta = timedelta(minutes=3)
    # How long the rollback waits for the agent's process to stop (real time, a process's).
    halt_wait: timedelta = timedelta(seconds=30)
    max_minutes: int = 60
    model: ModelAllowance | None = None
    simulated: bool = False
    access: AccessRules | None = None  # target limits, step-up, prerequisites per template


@dataclass(frozen=True)
class Ctx:
    now: datetime
    keys: Keys
    rules: Rules
    # Grant key -> the job holding it (``engine.grants.held_grants``), read by ``bot/`` for
    # the commands that take a grant: every open job's for a request, every live job's for
    # an approval; empty for every other command.
    held: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    job_id: str
    actor: Actor
    template: str
    targets: Mapping[str, str]
    minutes: int
    justification: str
    ticket: str
    channel: Mapping[str, Any] = field(default_factory=dict)
    # What a preflight read found for each target (key -> given, object_id, display_name):
    # kept in the request so the cards show approvers the names and ids they approve.
    resolved: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Groups the target principal is a member of (read from the tenant by the caller).
    memberships: tuple[str, ...] = ()
    # The external approval the template requires: {"id": ..., "verified": bool, and what
    # the caller checked live (status, principal, role)}; None when none was given.
    prerequisite: Mapping[str, Any] | None = None
    # Approvers the tenant says are members of the group a CA exclusion would exclude (read
    # by the caller): they may never approve it, so they count for nobody before it is asked.
    excluded_approvers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ActorCommand:
    """A command a person gave: ``actor`` is who. Each kind is its own subclass (the
    lifecycle dispatches on the exact type); Withdraw, Kill and Done carry nothing else."""

    actor: Actor


@dataclass(frozen=True)
class Approve(ActorCommand):
    plan_hash: str
    external_ref: str | None = None  # e.g. an Entra PIM request id or a change ticket
    step_up: StepUpEvidence | None = None  # a verified fresh sign-in, where the plan needs one
    # Is the approver a member of the group a CA exclusion would exclude (read from the
    # tenant by the caller)? Such an approver would benefit: refused. None: it could not be
    # read, refused too (fail closed). Role jobs ignore it (their grantee rule applies).
    excluded_member: bool | None = False


@dataclass(frozen=True)
class StepUpFailed(ActorCommand):
    """An approver's sign-in was refused before it could count (bad token, nonce, replay):
    always refused, so the refusal is recorded on the job."""

    plan_hash: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Deny(ActorCommand):
    plan_hash: str


@dataclass(frozen=True)
class Withdraw(ActorCommand):
    """An approver takes back their approval (pending: it no longer counts; active: the
    window ends)."""


@dataclass(frozen=True)
class Kill(ActorCommand):
    """Anyone in the incident channel stops the job now."""


@dataclass(frozen=True)
class Done(ActorCommand):
    """The requester or an approver ends an active window early."""


@dataclass(frozen=True)
class Extend(ActorCommand):
    minutes: int


@dataclass(frozen=True)
class Tick:
    """Time passed: expire pending requests, end windows, send countdown notices."""


@dataclass(frozen=True)
class WriteSending:
    """A write is about to leave the gateway. Recorded before it is sent, so a crash (or a
    store that refuses its receipt) between sending and receipting it cannot leave a job
    that does not know what it may have written.

    Without ``tool`` (or naming the planned write's): the planned write may have landed from
    now on (its rollback will not trust one read). Naming a credential write
    (``engine.containment.CREDENTIAL_WRITES``), with the ``receipt_id`` its receipt will
    carry and its ``arguments``: a credential no derived step removes may exist from now on,
    until that receipt settles it; this says nothing of the planned write."""

    tool: str = ""
    receipt_id: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCallRecorded:
    """The gateway allowed and ran, or refused, a tool call."""

    receipt_id: str
    tool_name: str
    arguments: Mapping[str, Any]
    result: Mapping[str, Any]
    status: str  # success | error | timeout
    token_scope_hash: str | None
    latency_ms: int
    role: str  # write | read | rollback | refused
    verified: bool | None = None  # verification reads: did the tenant look as expected
    kill_trigger: str | None = None
    started_at: datetime | None = None  # when the gateway allowed it (the receipt's time)


@dataclass(frozen=True)
class ModelCallRecorded:
    """The model proxy forwarded a call; ``payload`` is its unbound gateway receipt."""

    payload: Mapping[str, Any]
    token_scope_hash: str | None


@dataclass(frozen=True)
class RenewRollback:
    """The rollback token is about to lapse (a long outage, a slow tenant): replace it."""


@dataclass(frozen=True)
class RollbackFinished:
    verified: bool
    still_privileged: tuple[str, ...] = ()
    attempts: int = 1
    activity: Mapping[str, Any] | None = None  # the activity read's record (engine.activity)
    # Why the tenant last refused what is left (code, AADSTS number, hint; no free text):
    # told with the escalation, not kept in the job nor its bundle.
    refused: str = ""


END_WRITE_FAILED = "write_failed"  # the planned write was refused, failed or raised
END_EXECUTOR_FAILED = "executor_failed"  # the executor stopped on an error of its own
EXECUTOR_FAILURES = frozenset({END_WRITE_FAILED, END_EXECUTOR_FAILED})


@dataclass(frozen=True)
class ExecutorFailed:
    """The executor cannot do the job's work: end the window now (rollback of whatever
    may have happened), rather than leave the job active until its window ends."""

    reason: str  # one of EXECUTOR_FAILURES
    detail: str = ""


DELAYED_EARLY = "removal_delayed"  # the tenant refuses an early removal until not_before
DELAYED_DELETED = "principal_deleted"  # deleted: a restore brings the role back until not_before
DELAY_REASONS = frozenset({DELAYED_EARLY, DELAYED_DELETED})


@dataclass(frozen=True)
class RemovalDelayed:
    """The tenant refuses the removal until ``not_before``; the rollback has contained the
    principal meanwhile (``contained``: the containment tools that succeeded). ``reason``
    (one of DELAY_REASONS, the channel's event): an early removal, or a principal deleted
    during the window, whose role stays dormant in deleted items (a restore brings it back)
    until its grant ends at ``not_before``; removal is tried until then."""

    not_before: datetime
    contained: tuple[str, ...] = ()
    reason: str = DELAYED_EARLY


@dataclass(frozen=True)
class ExecutorStopped:
    """A run of the executor ended (halted by us or exited on its own): receipted in the
    chain while it is open. ``signal`` is the one that stopped it, if any."""

    reason: str  # halted | exited
    exit_code: int | None = None
    signal: str | None = None
    status: str = ""
    tool_calls: int = 0
    failures: int = 0


Command = (
    Request
    | Approve
    | StepUpFailed
    | Deny
    | Withdraw
    | Kill
    | Done
    | Extend
    | Tick
    | ToolCallRecorded
    | ModelCallRecorded
    | RenewRollback
    | RollbackFinished
    | ExecutorFailed
    | RemovalDelayed
    | ExecutorStopped
    | WriteSending
)


@dataclass(frozen=True)
class Effect:
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


ASK_APPROVERS = "ask_approvers"  # detail: principals, plan revision


UPDATE_CARDS = "update_cards"  # re-render status and approval cards


ANNOUNCE = "announce"  # detail: text-less facts (decision, actor, ...)


PUBLISH_POLICY = "publish_policy"  # detail: envelope


START_EXECUTOR = "start_executor"


REFRESH_EXECUTOR = "refresh_executor"  # a new agent token after an extension


HALT_EXECUTOR = "halt_executor"


RUN_ROLLBACK = "run_rollback"


NOTICE = "countdown_notice"  # detail: minutes_left, warning


FINISH = "finish"  # build the bundle, post kill result and audit summary


ESCALATE = "escalate"  # detail: still_privileged (and refused, unverified when known)


@dataclass(frozen=True)
class Transition:
    job: Job
    records: tuple[ChainRecord, ...] = ()
    effects: tuple[Effect, ...] = ()
    result: Mapping[str, Any] = field(default_factory=dict)


def refuse(reason: str, detail: str = "") -> CommandRefused:
    return CommandRefused(reason, detail)


def refusal_note(job: Job, command: Command, err: CommandRefused, now: datetime) -> Job:
    """The job with one more entry in its refusal log (bounded); nothing else changes."""
    actor = getattr(command, "actor", None)
    note = {
        "at": stamp(now),
        "command": type(command).__name__,
        "reason": err.reason,
        "actor": actor.chat_identity if isinstance(actor, Actor) else "",
    }
    return job.but(refusals=(*job.refusals, note)[-MAX_REFUSALS_KEPT:])


def require_principal(actor: Actor) -> str:
    if actor.principal is None:
        raise refuse("IDENTITY_UNRESOLVED", "your chat identity maps to no single directory user")
    return actor.principal
