"""Job transitions: ``apply(job, command, ctx) -> Transition``, pure.

A transition returns the new job, the chain records it appends (signed receipts, token
and revocation records, the terminal record) and the effects ``bot/`` must perform
afterwards (post cards, start or halt the executor, run the rollback, build the bundle).
The records are stored in the same transaction as the new job, so nothing is witnessed
that did not happen and nothing happens unwitnessed. A refused command raises
CommandRefused and changes nothing but the job's refusal log (see :func:`refusal_note`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine import chain
from engine.bundle import terminal_record
from engine.cst import TokenKind, issue_token, revocation_record
from engine.did import Signer
from engine.encoding import sha256_b64u
from engine.errors import CommandRefused, TemplateError
from engine.job import (
    ACTIVE,
    CLOSED,
    DENIED,
    END_APPROVAL_REVOKED,
    END_DONE,
    END_KILL,
    END_TIMEBOX,
    END_UNEXPECTED_TARGET,
    EXPIRED,
    FAILED,
    KILL_REASONS,
    KILLED,
    PENDING,
    ROLLING_BACK,
    Actor,
    Decision,
    Job,
    Plan,
    Token,
    stamp,
)
from engine.ports import ChainRecord
from engine.receipts import (
    HUMAN_APPROVAL_RECEIPT,
    TOOL_RECEIPT,
    Binding,
    bind_and_sign,
    content_hash,
    human_approval_payload,
    tool_receipt_payload,
    witness_hash,
)
from engine.timeutil import parse_iso
from engine.wpc import ModelAllowance, PlanRequest, Policy, build_wpc, sign_wpc

MAX_REFUSALS_KEPT = 100


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
    rollback_max_attempts: int = 5
    max_minutes: int = 60
    model: ModelAllowance | None = None
    simulated: bool = False


@dataclass(frozen=True)
class Ctx:
    now: datetime
    keys: Keys
    rules: Rules


# --------------------------------------------------------------------------- commands


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


@dataclass(frozen=True)
class Approve:
    actor: Actor
    plan_hash: str
    external_ref: str | None = None  # e.g. an Entra PIM request id or a change ticket


@dataclass(frozen=True)
class Deny:
    actor: Actor
    plan_hash: str


@dataclass(frozen=True)
class Withdraw:
    actor: Actor


@dataclass(frozen=True)
class Kill:
    actor: Actor


@dataclass(frozen=True)
class Done:
    actor: Actor


@dataclass(frozen=True)
class Extend:
    actor: Actor
    minutes: int


@dataclass(frozen=True)
class Tick:
    """Time passed: expire pending requests, end windows, send countdown notices."""


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


Command = (
    Request
    | Approve
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
)


# ---------------------------------------------------------------------------- effects


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
ESCALATE = "escalate"  # detail: still_privileged


@dataclass(frozen=True)
class Transition:
    job: Job
    records: tuple[ChainRecord, ...] = ()
    effects: tuple[Effect, ...] = ()
    result: Mapping[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------- chain ledger


class _Ledger:
    """Appends events (and the artifacts they witness) to a job's chain during a transition."""

    def __init__(self, job: Job, now: datetime) -> None:
        self.job = job
        self.now = now
        self.records: list[ChainRecord] = []

    def _event(self, event_type: str, payload_hash: str) -> dict[str, Any]:
        event = chain.make_event(
            run_id=self.job.job_id,
            seq=self.job.chain_length,
            event_type=event_type,
            payload_hash_b64u=payload_hash,
            prev_hash_b64u=self.job.chain_head,
            at=self.now,
        )
        self.job = self.job.but(
            chain_length=self.job.chain_length + 1, chain_head=event["event_hash_b64u"]
        )
        return event

    def add(self, event_type: str, payload_hash: str, envelope: Mapping[str, Any] | None) -> None:
        event = self._event(event_type, payload_hash)
        self.records.append(ChainRecord(self.job.job_id, len(self.records), event, envelope))

    def add_receipt(
        self,
        event_type: str,
        envelope_type: str,
        payload: Mapping[str, Any],
        binding: Binding,
        signer: Signer,
    ) -> dict[str, Any]:
        event = self._event(event_type, witness_hash(payload))
        envelope = bind_and_sign(
            envelope_type, payload, binding, event["event_hash_b64u"], signer, self.now
        )
        self.records.append(ChainRecord(self.job.job_id, len(self.records), event, envelope))
        return envelope

    def finish(
        self, effects: Sequence[Effect] = (), result: Mapping[str, Any] | None = None
    ) -> Transition:
        base = self.job.chain_length - len(self.records)
        numbered = tuple(
            ChainRecord(r.job_id, base + i, r.event, r.envelope) for i, r in enumerate(self.records)
        )
        return Transition(self.job, numbered, tuple(effects), result or {"state": self.job.state})


# -------------------------------------------------------------------------- helpers


def _refuse(reason: str, detail: str = "") -> CommandRefused:
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


def _plan_request(job_id: str, req: Mapping[str, Any], requester: str, minutes: int) -> PlanRequest:
    return PlanRequest(
        template=str(req["template"]),
        targets=dict(req["targets"]),
        minutes=minutes,
        requester=requester,
        justification=str(req["justification"]),
        ticket=str(req["ticket"]),
        job_id=job_id,
    )


def _make_plan(ctx: Ctx, request: PlanRequest, revision: int) -> Plan:
    payload = build_wpc(
        request,
        ctx.keys.publisher.did,
        model=ctx.rules.model,
        max_minutes=ctx.rules.max_minutes,
        revision=revision,
    )
    policy = Policy.from_payload(payload)
    return Plan(revision, payload, policy.policy_hash_b64u, request.minutes)


def _require_principal(actor: Actor) -> str:
    if actor.principal is None:
        raise _refuse("IDENTITY_UNRESOLVED", "your chat identity maps to no single directory user")
    return actor.principal


def _binding(job: Job, token: Token | None = None) -> Binding:
    scope = str(token.claims["token_scope_hash_b64u"]) if token else None
    return Binding(
        run_id=job.job_id, policy_hash_b64u=job.plan.plan_hash, token_scope_hash_b64u=scope
    )


def _receipt_id(job: Job, kind: str) -> str:
    return f"{kind}_{job.job_id}_{job.chain_length:06d}"


# ------------------------------------------------------------------------ transitions


def start(command: Request, ctx: Ctx) -> Transition:
    """Plan a new job from a request (it starts pending approval)."""
    actor = command.actor
    requester = _require_principal(actor)
    if ctx.rules.requesters is not None and requester not in ctx.rules.requesters:
        raise _refuse("NOT_ALLOWED_TO_REQUEST", "you are not in the requester group")
    request = {
        "template": command.template,
        "targets": dict(command.targets),
        "minutes": command.minutes,
        "justification": command.justification,
        "ticket": command.ticket,
    }
    try:
        plan = _make_plan(
            ctx, _plan_request(command.job_id, request, requester, command.minutes), 0
        )
    except TemplateError as exc:
        raise _refuse("NOT_ELIGIBLE", str(exc)) from exc
    job = Job(
        job_id=command.job_id,
        state=PENDING,
        created_at=stamp(ctx.now),
        expires_at=stamp(ctx.now + ctx.rules.pending_ttl),
        requester=actor,
        request=request,
        channel=dict(command.channel),
        plan=plan,
        simulated=ctx.rules.simulated,
        policies=(sign_wpc(plan.payload, ctx.keys.publisher, ctx.now),),
    )
    ledger = _Ledger(job, ctx.now)
    ledger.add(chain.REQUEST, plan.plan_hash, None)
    approvers = sorted(ctx.rules.approvers - {requester})
    effects = [
        Effect(ASK_APPROVERS, {"principals": approvers, "revision": 0}),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(effects, {"state": PENDING, "plan_hash": plan.plan_hash})


def apply(job: Job, command: Command, ctx: Ctx) -> Transition:
    """Apply ``command`` to ``job`` at ``ctx.now``. Raises CommandRefused when not allowed."""
    if isinstance(command, ToolCallRecorded):
        return _tool_call(job, command, ctx)
    if isinstance(command, ModelCallRecorded):
        return _model_call(job, command, ctx)
    if job.resolved:
        raise _refuse("ALREADY_RESOLVED", f"the job ended {job.state}")
    if isinstance(command, Approve):
        return _approve(job, command, ctx)
    if isinstance(command, Deny):
        return _deny(job, command, ctx)
    if isinstance(command, Withdraw):
        return _withdraw(job, command, ctx)
    if isinstance(command, Kill):
        return _kill(job, command, ctx)
    if isinstance(command, Done):
        return _done(job, command, ctx)
    if isinstance(command, Extend):
        return _extend(job, command, ctx)
    if isinstance(command, Tick):
        return _tick(job, ctx)
    if isinstance(command, RollbackFinished):
        return _rollback_finished(job, command, ctx)
    if isinstance(command, RenewRollback):
        return _renew_rollback(job, ctx)
    raise _refuse("UNKNOWN_COMMAND", type(command).__name__)


def _open_plan(job: Job) -> Plan:
    """The plan approvals currently apply to: the request, or a pending extension."""
    if job.state == PENDING:
        return job.plan
    if job.state == ACTIVE and job.extension is not None:
        return job.extension
    raise _refuse("NOT_AWAITING_APPROVAL", f"the job is {job.state}")


def _check_approver(job: Job, actor: Actor, ctx: Ctx) -> str:
    principal = _require_principal(actor)
    if principal == job.requester.principal:
        raise _refuse("SELF_APPROVAL", "the requester cannot approve their own request")
    if principal not in ctx.rules.approvers:
        raise _refuse("NOT_AN_APPROVER", "you are not in the approver group")
    return principal


def _record_decision(
    job: Job,
    ledger: _Ledger,
    plan: Plan,
    actor: Actor,
    principal: str,
    decision: str,
    ctx: Ctx,
    minted: Token | None = None,
) -> Plan:
    approval_type = "explicit_approve" if decision == "approve" else "explicit_deny"
    receipt_id = _receipt_id(ledger.job, "har")
    payload = human_approval_payload(
        receipt_id=receipt_id,
        approval_type=approval_type,
        approver_subject=principal,
        agent_did=ctx.keys.agent.did,
        plan_hash_b64u=plan.plan_hash,
        summary=f"{decision} plan r{plan.revision} of {job.job_id}",
        at=ctx.now,
        minted_capability_id=minted.jti if minted else None,
        minted_capability_ttl_seconds=(
            int(minted.claims["exp"]) - int(minted.claims["iat"]) if minted else None
        ),
    )
    ledger.add_receipt(
        chain.APPROVAL, HUMAN_APPROVAL_RECEIPT, payload, _binding(ledger.job), ctx.keys.agent
    )
    entry = Decision(
        principal, actor.chat_identity, decision, plan.plan_hash, stamp(ctx.now), receipt_id
    )
    return Plan(plan.revision, plan.payload, plan.plan_hash, plan.minutes, (*plan.decisions, entry))


def _approve(job: Job, command: Approve, ctx: Ctx) -> Transition:
    plan = _open_plan(job)
    if job.state == PENDING and ctx.now >= parse_iso(job.expires_at):
        raise _refuse("REQUEST_EXPIRED", "the request expired before it was approved")
    principal = _check_approver(job, command.actor, ctx)
    if command.plan_hash != plan.plan_hash:
        raise _refuse("OUTDATED_PLAN", "you approved a plan that is no longer the current one")
    if principal in plan.approvers():
        raise _refuse("DUPLICATE_APPROVER", "you have already approved this plan")
    needed = int(plan.payload["metadata"]["breakglass"]["approvals"]["min_approvers"])
    refs = dict(job.external_refs)
    if command.external_ref:
        refs[f"approval:{principal}"] = command.external_ref[:200]
    ledger = _Ledger(job.but(external_refs=refs), ctx.now)
    if len(plan.approvers()) + 1 < needed:
        updated = _record_decision(job, ledger, plan, command.actor, principal, "approve", ctx)
        ledger.job = _with_plan(ledger.job, updated)
        return ledger.finish(
            [Effect(UPDATE_CARDS), Effect(ANNOUNCE, {"decision": "approve", "by": principal})]
        )
    if plan.revision == 0:
        return _activate(job, ledger, plan, command, principal, ctx)
    return _extend_approved(job, ledger, plan, command, principal, ctx)


def _with_plan(job: Job, plan: Plan) -> Job:
    if job.extension is not None and job.extension.revision == plan.revision:
        return job.but(extension=plan)
    return job.but(plan=plan)


def _mint(job: Job, policy: Policy, kind: str, window_end: datetime, seq: int, ctx: Ctx) -> Token:
    """A token whose jti and nonce derive from its chain position: unique per job, and a
    transition stays a pure function of its inputs."""
    issued = issue_token(
        policy,
        job_id=job.job_id,
        kind=kind,
        issuer=ctx.keys.issuer,
        agent_did=ctx.keys.agent.did,
        now=ctx.now,
        window_end=window_end,
    )
    seed = sha256_b64u(f"{job.job_id}|{kind}|{seq}".encode())
    claims = dict(issued.claims) | {"jti": f"cst_{seed[:22]}", "nonce": seed[22:]}
    return Token(kind, claims)


def _add_token(ledger: _Ledger, token: Token) -> None:
    ledger.add(chain.TOKEN_ISSUED, content_hash(token.claims), None)
    ledger.job = ledger.job.but(tokens=(*ledger.job.tokens, token))


def _issue(
    job: Job, ledger: _Ledger, policy: Policy, kind: str, window_end: datetime, ctx: Ctx
) -> Token:
    token = _mint(job, policy, kind, window_end, ledger.job.chain_length, ctx)
    _add_token(ledger, token)
    return token


def _proposed(job: Job, plan: Plan) -> Mapping[str, Any]:
    """The signed envelope of ``plan``, made when it was proposed."""
    return next(e for e in job.policies if e["payload_hash_b64u"] == plan.plan_hash)


def _activate(
    job: Job, ledger: _Ledger, plan: Plan, command: Approve, principal: str, ctx: Ctx
) -> Transition:
    """Second approval: publish the WPC, issue the CST, open the window, start the executor."""
    window_end = ctx.now + timedelta(minutes=plan.minutes)
    policy = Policy.from_payload(plan.payload)
    # Mint first (its event follows the approval's), so the receipt names the capability.
    token = _mint(job, policy, TokenKind.AGENT, window_end, ledger.job.chain_length + 1, ctx)
    updated = _record_decision(job, ledger, plan, command.actor, principal, "approve", ctx, token)
    _add_token(ledger, token)
    ledger.job = ledger.job.but(
        plan=updated,
        state=ACTIVE,
        policy_envelope=_proposed(job, plan),
        window_start=stamp(ctx.now),
        window_end=stamp(window_end),
        next_notice_at=stamp(_next_notice(ctx.now, window_end, ctx.rules)),
    )
    effects = [
        Effect(PUBLISH_POLICY, {"policy_hash": plan.plan_hash}),
        Effect(ANNOUNCE, {"decision": "approve", "by": principal, "activated": True}),
        Effect(START_EXECUTOR),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(effects, {"state": ACTIVE, "jti": token.jti})


def _extend_approved(
    job: Job, ledger: _Ledger, plan: Plan, command: Approve, principal: str, ctx: Ctx
) -> Transition:
    """Second approval of an extension: new WPC in force, old token revoked, new token."""
    window_end = ctx.now + timedelta(minutes=plan.minutes)
    old = job.token(TokenKind.AGENT)
    updated = _record_decision(job, ledger, plan, command.actor, principal, "approve", ctx)
    if old is not None and old.revoked_at is None:
        _revoke(ledger, old, "extended", ctx)
    ledger.job = ledger.job.but(
        plan=updated,
        extension=None,
        policy_envelope=_proposed(job, plan),
        window_end=stamp(window_end),
        next_notice_at=stamp(_next_notice(ctx.now, window_end, ctx.rules)),
    )
    token = _issue(job, ledger, Policy.from_payload(plan.payload), TokenKind.AGENT, window_end, ctx)
    effects = [
        Effect(PUBLISH_POLICY, {"policy_hash": plan.plan_hash}),
        Effect(REFRESH_EXECUTOR),
        Effect(ANNOUNCE, {"decision": "approve", "by": principal, "extended": True}),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(
        effects, {"state": ACTIVE, "jti": token.jti, "window_end": stamp(window_end)}
    )


def _deny(job: Job, command: Deny, ctx: Ctx) -> Transition:
    plan = _open_plan(job)
    principal = _require_principal(command.actor)
    if principal != job.requester.principal:
        _check_approver(job, command.actor, ctx)
    if command.plan_hash != plan.plan_hash:
        raise _refuse("OUTDATED_PLAN", "you answered a plan that is no longer the current one")
    ledger = _Ledger(job, ctx.now)
    updated = _record_decision(job, ledger, plan, command.actor, principal, "deny", ctx)
    if plan.revision > 0:  # an extension was refused: the window goes on as approved
        ledger.job = ledger.job.but(extension=None)
        return ledger.finish(
            [
                Effect(UPDATE_CARDS),
                Effect(ANNOUNCE, {"decision": "deny_extension", "by": principal}),
            ]
        )
    ledger.job = ledger.job.but(plan=updated)
    return _close(ledger, DENIED, "denied", principal, ctx)


def _withdraw(job: Job, command: Withdraw, ctx: Ctx) -> Transition:
    principal = _require_principal(command.actor)
    plan = job.extension if job.extension is not None else job.plan
    if principal not in plan.approvers() and principal not in job.plan.approvers():
        raise _refuse("NOTHING_TO_WITHDRAW", "you have not approved this job")
    ledger = _Ledger(job, ctx.now)
    target = plan if principal in plan.approvers() else job.plan
    updated = _record_decision(job, ledger, target, command.actor, principal, "withdraw", ctx)
    ledger.job = _with_plan(ledger.job, updated)
    if job.state == PENDING:
        return ledger.finish(
            [Effect(UPDATE_CARDS), Effect(ANNOUNCE, {"decision": "withdraw", "by": principal})]
        )
    if job.state == ACTIVE:
        return _begin_end(ledger, END_APPROVAL_REVOKED, principal, ctx)
    raise _refuse("TOO_LATE_TO_WITHDRAW", f"the job is {job.state}")


def _kill(job: Job, command: Kill, ctx: Ctx) -> Transition:
    """Anyone in the incident channel may kill: stopping is always the safe direction."""
    who = command.actor.principal or command.actor.chat_identity
    ledger = _Ledger(job, ctx.now)
    if job.state == PENDING:
        return _close(ledger, KILLED, END_KILL, who, ctx)
    if job.state == ACTIVE:
        return _begin_end(ledger, END_KILL, who, ctx)
    raise _refuse("ALREADY_ENDING", "the job is already rolling back")


def _done(job: Job, command: Done, ctx: Ctx) -> Transition:
    principal = _require_principal(command.actor)
    if job.state != ACTIVE:
        raise _refuse("NOT_ACTIVE", f"the job is {job.state}")
    if principal != job.requester.principal and principal not in job.plan.approvers():
        raise _refuse("NOT_A_PARTICIPANT", "only the requester or an approver can end early")
    return _begin_end(_Ledger(job, ctx.now), END_DONE, principal, ctx)


def _extend(job: Job, command: Extend, ctx: Ctx) -> Transition:
    """Propose a longer window: a new plan that needs two fresh approvals."""
    principal = _require_principal(command.actor)
    if job.state != ACTIVE:
        raise _refuse("NOT_ACTIVE", f"the job is {job.state}")
    if principal != job.requester.principal:
        raise _refuse("NOT_THE_REQUESTER", "only the requester can ask for more time")
    end = job.window_end_at()
    assert end is not None
    total = math.ceil((end - ctx.now).total_seconds() / 60) + command.minutes
    request = _plan_request(job.job_id, job.request, principal, total)
    try:
        plan = _make_plan(ctx, request, job.plan.revision + 1)
    except TemplateError as exc:
        raise _refuse("NOT_ELIGIBLE", str(exc)) from exc
    proposed = (*job.policies, sign_wpc(plan.payload, ctx.keys.publisher, ctx.now))
    ledger = _Ledger(job.but(extension=plan, policies=proposed), ctx.now)
    ledger.add(chain.EXTENSION_REQUEST, plan.plan_hash, None)
    approvers = sorted(ctx.rules.approvers - {principal})
    effects = [
        Effect(ASK_APPROVERS, {"principals": approvers, "revision": plan.revision}),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(effects, {"state": ACTIVE, "plan_hash": plan.plan_hash})


def _next_notice(now: datetime, end: datetime, rules: Rules) -> datetime:
    """The next countdown notice: every ``notice_every``, every minute in the final stretch."""
    left = end - now
    if left <= rules.notice_final_stretch:
        step = rules.notice_final_every
    else:
        step = min(rules.notice_every, left - rules.notice_final_stretch)
    return min(now + step, end)


def _tick(job: Job, ctx: Ctx) -> Transition:
    ledger = _Ledger(job, ctx.now)
    if job.state == PENDING and ctx.now >= parse_iso(job.expires_at):
        return _close(ledger, EXPIRED, "expired_unapproved", None, ctx)
    end = job.window_end_at()
    if job.state == ACTIVE and end is not None:
        if ctx.now >= end:
            return _begin_end(ledger, END_TIMEBOX, None, ctx)
        if job.next_notice_at and ctx.now >= parse_iso(job.next_notice_at):
            left = end - ctx.now
            warning = left <= ctx.rules.notice_final_stretch
            ledger.job = job.but(next_notice_at=stamp(_next_notice(ctx.now, end, ctx.rules)))
            minutes = math.ceil(left.total_seconds() / 60)
            return ledger.finish(
                [
                    Effect(NOTICE, {"minutes_left": minutes, "warning": warning}),
                    Effect(UPDATE_CARDS),
                ]
            )
    if job.state == ROLLING_BACK:
        return ledger.finish([Effect(RUN_ROLLBACK, {"resume": True})], {"state": ROLLING_BACK})
    return ledger.finish([], {"state": job.state, "idle": True})


def _revoke(ledger: _Ledger, token: Token, reason: str, ctx: Ctx) -> None:
    record = revocation_record(token.claims, reason, ctx.keys.issuer, ctx.now)
    ledger.add(chain.REVOCATION, record["payload_hash_b64u"], record)
    revoked = Token(token.kind, token.claims, stamp(ctx.now))
    ledger.job = ledger.job.but(
        tokens=tuple(revoked if t.jti == token.jti else t for t in ledger.job.tokens)
    )


def _begin_end(ledger: _Ledger, reason: str, by: str | None, ctx: Ctx) -> Transition:
    """Revoke the agent token first (in this very transaction), then hand over to rollback."""
    job = ledger.job
    agent = job.token(TokenKind.AGENT)
    if agent is not None and agent.revoked_at is None:
        _revoke(ledger, agent, reason, ctx)
    policy = Policy.from_payload(job.plan.payload)
    _issue(job, ledger, policy, TokenKind.ROLLBACK, ctx.now + _rollback_ttl(policy, ctx), ctx)
    ledger.job = ledger.job.but(
        state=ROLLING_BACK, end_reason=reason, ended_by=by, ended_at=stamp(ctx.now), extension=None
    )
    effects = [Effect(HALT_EXECUTOR), Effect(RUN_ROLLBACK), Effect(UPDATE_CARDS)]
    return ledger.finish(effects, {"state": ROLLING_BACK, "reason": reason})


def _rollback_ttl(policy: Policy, ctx: Ctx) -> timedelta:
    return min(ctx.rules.rollback_token_ttl, timedelta(seconds=policy.cst_max_ttl_seconds))


def _renew_rollback(job: Job, ctx: Ctx) -> Transition:
    if job.state != ROLLING_BACK:
        raise _refuse("NOT_ROLLING_BACK", f"the job is {job.state}")
    ledger = _Ledger(job, ctx.now)
    old = job.token(TokenKind.ROLLBACK)
    if old is not None and old.revoked_at is None:
        _revoke(ledger, old, "renewed", ctx)
    policy = Policy.from_payload(job.plan.payload)
    token = _issue(
        job, ledger, policy, TokenKind.ROLLBACK, ctx.now + _rollback_ttl(policy, ctx), ctx
    )
    return ledger.finish([Effect(UPDATE_CARDS)], {"state": ROLLING_BACK, "jti": token.jti})


def _rollback_finished(job: Job, command: RollbackFinished, ctx: Ctx) -> Transition:
    if job.state != ROLLING_BACK:
        raise _refuse("NOT_ROLLING_BACK", f"the job is {job.state}")
    ledger = _Ledger(job, ctx.now)
    for token in job.tokens:
        if token.revoked_at is None:
            _revoke(ledger, token, "rollback_finished", ctx)
    # Verification is part of the policy: a write never read back is a failed job (§5).
    verified = command.verified and (not job.write_done or job.verified_after_write is True)
    ledger.job = ledger.job.but(
        rollback_verified=command.verified,
        still_privileged=tuple(command.still_privileged),
        rollback_attempts=command.attempts,
    )
    if not verified or command.still_privileged:
        outcome = FAILED
    else:
        outcome = KILLED if job.end_reason in KILL_REASONS else CLOSED
    return _close(ledger, outcome, job.end_reason or "", job.ended_by, ctx)


def _close(ledger: _Ledger, outcome: str, reason: str, by: str | None, ctx: Ctx) -> Transition:
    """Resolve the job: revoke any live token, append the signed terminal record."""
    for token in ledger.job.tokens:
        if token.revoked_at is None:
            _revoke(ledger, token, reason or outcome, ctx)
    job = ledger.job
    record = terminal_record(
        run_id=job.job_id,
        event_count=job.chain_length,
        head_hash_b64u=job.chain_head,
        outcome=outcome,
        signer=ctx.keys.agent,
        at=ctx.now,
    )
    ledger.add(chain.RUN_END, record["payload_hash_b64u"], record)
    ledger.job = ledger.job.but(
        state=outcome,
        end_reason=job.end_reason or reason,
        ended_by=job.ended_by or by,
        ended_at=job.ended_at or stamp(ctx.now),
    )
    effects = [Effect(HALT_EXECUTOR), Effect(FINISH, {"outcome": outcome}), Effect(UPDATE_CARDS)]
    if outcome == FAILED:
        effects.append(Effect(ESCALATE, {"still_privileged": list(ledger.job.still_privileged)}))
    return ledger.finish(effects, {"state": outcome})


def _tool_call(job: Job, command: ToolCallRecorded, ctx: Ctx) -> Transition:
    """Receipt a tool call (allowed or refused); a target outside the WPC kills the job."""
    if job.resolved:
        raise _refuse("ALREADY_RESOLVED", "the job has ended; its chain is closed")
    token = _token_with_scope(job, command.token_scope_hash)
    ledger = _Ledger(job, ctx.now)
    payload = tool_receipt_payload(
        receipt_id=command.receipt_id,
        tool_name=command.tool_name[:200] or "(none)",
        arguments=command.arguments,
        result=command.result,
        status=command.status,
        agent_did=ctx.keys.agent.did,
        at=command.started_at or ctx.now,
        latency_ms=command.latency_ms,
    )
    ledger.add_receipt(
        chain.TOOL_CALL, TOOL_RECEIPT, payload, _binding(job, token), ctx.keys.gateway
    )
    changes: dict[str, Any] = {"last_tool_call": f"{command.tool_name[:80]}: {command.status}"}
    if command.role == "write" and command.status == "success":
        changes["write_done"] = True
    if _is_planned_read(job, command, "verify_action") and job.write_done:
        changes["verified_after_write"] = command.verified
    ledger.job = ledger.job.but(**changes)
    if command.kill_trigger == END_UNEXPECTED_TARGET and ledger.job.state == ACTIVE:
        return _begin_end(ledger, END_UNEXPECTED_TARGET, "gateway", ctx)
    return ledger.finish(
        [Effect(UPDATE_CARDS)], {"state": ledger.job.state, "receipt_id": command.receipt_id}
    )


def _token_with_scope(job: Job, scope_hash: str | None) -> Token | None:
    """The job's token a receipt binds to (None for a refusal that presented no known token)."""
    return next((t for t in job.tokens if t.claims["token_scope_hash_b64u"] == scope_hash), None)


def _is_planned_read(job: Job, command: ToolCallRecorded, which: str) -> bool:
    """Is this the WPC's planned verification read (same tool, same arguments)?"""
    planned = job.plan.payload["metadata"]["breakglass"][which]
    return (
        command.role == "read"
        and command.tool_name == planned["tool"]
        and dict(command.arguments) == dict(planned["arguments"])
    )


def _model_call(job: Job, command: ModelCallRecorded, ctx: Ctx) -> Transition:
    if job.resolved:
        raise _refuse("ALREADY_RESOLVED", "the job has ended; its chain is closed")
    token = _token_with_scope(job, command.token_scope_hash)
    ledger = _Ledger(job, ctx.now)
    envelope = ledger.add_receipt(
        chain.LLM_CALL, "gateway_receipt", command.payload, _binding(job, token), ctx.keys.gateway
    )
    result = {"state": job.state, "receipt_id": command.payload["receipt_id"], "envelope": envelope}
    return ledger.finish([], result)
