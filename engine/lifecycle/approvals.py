"""Transitions that answer a plan: approve (the last approval activates the job, or puts an
extension in force), deny, withdraw, and a refused step-up sign-in. The plans they answer
are proposed in :mod:`engine.lifecycle.proposals` (request, extend)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from engine import chain
from engine.cst import TokenKind
from engine.grants import (
    END_TARGET_BUSY,
    TARGET_BUSY,
    holder_of,
    job_grant_key,
    taken,
)
from engine.job import (
    ACTIVE,
    CA_EXCLUSION,
    DENIED,
    END_APPROVAL_REVOKED,
    PENDING,
    Actor,
    Decision,
    Job,
    Plan,
    Token,
    stamp,
)
from engine.lifecycle.commands import (
    ANNOUNCE,
    PUBLISH_POLICY,
    REFRESH_EXECUTOR,
    START_EXECUTOR,
    UPDATE_CARDS,
    Approve,
    Ctx,
    Deny,
    Effect,
    StepUpFailed,
    Transition,
    Withdraw,
    refusal_note,
    refuse,
    require_principal,
)
from engine.lifecycle.ending import begin_end, close, next_notice
from engine.lifecycle.ledger import (
    Ledger,
    add_token,
    binding_for,
    issue,
    mint,
    next_receipt_id,
    revoke,
)
from engine.lifecycle.proposals import grantee
from engine.receipts import (
    HUMAN_APPROVAL_RECEIPT,
    human_approval_payload,
)
from engine.stepup import check_evidence, required
from engine.targets import TENANT_UNAVAILABLE
from engine.timeutil import parse_iso
from engine.wpc import Policy


def _open_plan(job: Job) -> Plan:
    """The plan approvals currently apply to: the request, or a pending extension."""
    if job.state == PENDING:
        return job.plan
    if job.state == ACTIVE and job.extension is not None:
        return job.extension
    raise refuse("NOT_AWAITING_APPROVAL", f"the job is {job.state}")


def check_plan(job: Job, plan: Plan, given: str, what: str) -> None:
    """Refuse an answer to another plan than ``plan``: OUTDATED_PLAN for one the job once
    had (a stale card; every plan proposed is kept in ``job.policies``), PLAN_UNKNOWN for
    one it never had, where "no longer current" would mislead."""
    if given == plan.plan_hash:
        return
    if any(e["payload_hash_b64u"] == given for e in job.policies):
        raise refuse("OUTDATED_PLAN", f"{what} a plan that is no longer the current one")
    raise refuse("PLAN_UNKNOWN", f"{what} a plan this job never had")


def _check_approver(job: Job, actor: Actor, ctx: Ctx) -> str:
    principal = require_principal(actor)
    if principal == job.requester.principal:
        raise refuse("SELF_APPROVAL", "the requester cannot approve their own request")
    if principal == grantee(job.request):
        raise refuse("GRANTEE_APPROVAL", "you would receive this role: others must approve it")
    if principal not in ctx.rules.approvers:
        raise refuse("NOT_AN_APPROVER", "you are not in the approver group")
    return principal


def _check_not_excluded(job: Job, command: Approve) -> None:
    """A member of the group a CA exclusion excludes would be let through by it: like a
    role's grantee, no second pair of eyes on it (ADR 0018)."""
    if job.request.get("template") != CA_EXCLUSION:
        return
    if command.excluded_member is None:
        raise refuse(TENANT_UNAVAILABLE, "your membership of the excluded group could not be read")
    if command.excluded_member:
        raise refuse(
            "EXCLUDED_MEMBER_APPROVAL",
            "you are a member of the group this would exclude: others must approve it",
        )


def _record_decision(
    job: Job,
    ledger: Ledger,
    plan: Plan,
    actor: Actor,
    principal: str,
    decision: str,
    ctx: Ctx,
    minted: Token | None = None,
    step_up: Mapping[str, Any] | None = None,
) -> Plan:
    approval_type = "explicit_approve" if decision == "approve" else "explicit_deny"
    receipt_id = next_receipt_id(ledger.job, "har")
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
    binding = replace(binding_for(ledger.job), step_up=step_up)
    ledger.add_receipt(chain.APPROVAL, HUMAN_APPROVAL_RECEIPT, payload, binding, ctx.keys.agent)
    entry = Decision(
        principal,
        actor.chat_identity,
        decision,
        plan.plan_hash,
        stamp(ctx.now),
        receipt_id,
        step_up,
    )
    return Plan(plan.revision, plan.payload, plan.plan_hash, plan.minutes, (*plan.decisions, entry))


def approve(job: Job, command: Approve, ctx: Ctx) -> Transition:
    plan = _open_plan(job)
    if job.state == PENDING and ctx.now >= parse_iso(job.expires_at):
        raise refuse("REQUEST_EXPIRED", "the request expired before it was approved")
    principal = _check_approver(job, command.actor, ctx)
    _check_not_excluded(job, command)
    check_plan(job, plan, command.plan_hash, "you approved")
    if principal in plan.approvers():
        raise refuse("DUPLICATE_APPROVER", "you have already approved this plan")
    _check_step_up(job, plan, command, principal, ctx)
    needed = int(plan.payload["metadata"]["breakglass"]["approvals"]["min_approvers"])
    refs = dict(job.external_refs)
    if command.external_ref:
        refs[f"approval:{principal}"] = command.external_ref[:200]
    ledger = Ledger(job.but(external_refs=refs), ctx.now)
    if len(plan.approvers()) + 1 < needed:
        updated = _record_decision(
            job, ledger, plan, command.actor, principal, "approve", ctx, None, _evidence(command)
        )
        ledger.job = _with_plan(ledger.job, updated)
        return ledger.finish(
            [Effect(UPDATE_CARDS), Effect(ANNOUNCE, {"decision": "approve", "by": principal})]
        )
    if plan.revision == 0:
        holder = holder_of(job_grant_key(job), ctx.held, job.job_id)
        if holder is not None:
            return _busy_at_activation(job, command, holder, ctx)
        return _activate(job, ledger, plan, command, principal, ctx)
    return _extend_approved(job, ledger, plan, command, principal, ctx)


def _check_step_up(job: Job, plan: Plan, command: Approve, principal: str, ctx: Ctx) -> None:
    terms = required(plan.payload)
    if terms is None:
        return
    used = [
        str(d.step_up.get("token_hash_b64u"))
        for p in (job.plan, job.extension)
        if p is not None
        for d in p.decisions
        if d.step_up
    ]
    check_evidence(
        terms,
        command.step_up,
        principal=principal,
        plan_hash=plan.plan_hash,
        used=used,
        now=ctx.now,
    )


def _evidence(command: Approve) -> dict[str, Any] | None:
    """The step-up evidence for the receipt: what the token showed, never the token."""
    return command.step_up.to_json() if command.step_up is not None else None


def step_up_failed(job: Job, command: StepUpFailed, ctx: Ctx) -> Transition:
    """A refused sign-in: checked like a click (who, which plan), then always refused."""
    plan = _open_plan(job)
    require_principal(command.actor)
    check_plan(job, plan, command.plan_hash, "the sign-in was for")
    raise refuse(command.reason, command.detail)


def _with_plan(job: Job, plan: Plan) -> Job:
    if job.extension is not None and job.extension.revision == plan.revision:
        return job.but(extension=plan)
    return job.but(plan=plan)


def _proposed(job: Job, plan: Plan) -> Mapping[str, Any]:
    """The signed envelope of ``plan``, made when it was proposed."""
    return next(e for e in job.policies if e["payload_hash_b64u"] == plan.plan_hash)


def _busy_at_activation(job: Job, command: Approve, holder: str, ctx: Ctx) -> Transition:
    """The last approval came while another job holds the grant (both were pending, or
    this one was asked for before the rule): the job ends denied, by the rule, with a
    signed terminal record; the approval is noted as refused, never counted."""
    err = taken(holder)
    ledger = Ledger(refusal_note(job, command, err, ctx.now), ctx.now)
    t = close(ledger, DENIED, END_TARGET_BUSY, None, ctx)
    refused = {"refused": TARGET_BUSY, "detail": err.detail, "holder": holder}
    return replace(t, result={**t.result, **refused})


def _activate(
    job: Job, ledger: Ledger, plan: Plan, command: Approve, principal: str, ctx: Ctx
) -> Transition:
    """Second approval: publish the WPC, issue the CST, open the window, start the executor."""
    window_end = ctx.now + timedelta(minutes=plan.minutes)
    policy = Policy.from_payload(plan.payload)
    # Mint first (its event follows the approval's), so the receipt names the capability.
    token = mint(job, policy, TokenKind.AGENT, window_end, ledger.job.chain_length + 1, ctx)
    updated = _record_decision(
        job, ledger, plan, command.actor, principal, "approve", ctx, token, _evidence(command)
    )
    add_token(ledger, token)
    ledger.job = ledger.job.but(
        plan=updated,
        state=ACTIVE,
        policy_envelope=_proposed(job, plan),
        window_start=stamp(ctx.now),
        window_end=stamp(window_end),
        next_notice_at=stamp(next_notice(ctx.now, window_end, ctx.rules)),
    )
    effects = [
        Effect(PUBLISH_POLICY, {"policy_hash": plan.plan_hash}),
        Effect(ANNOUNCE, {"decision": "approve", "by": principal, "activated": True}),
        Effect(START_EXECUTOR),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(effects, {"state": ACTIVE, "jti": token.jti})


def _extend_approved(
    job: Job, ledger: Ledger, plan: Plan, command: Approve, principal: str, ctx: Ctx
) -> Transition:
    """Second approval of an extension: new WPC in force, old token revoked, new token."""
    window_end = ctx.now + timedelta(minutes=plan.minutes)
    old = job.token(TokenKind.AGENT)
    updated = _record_decision(
        job, ledger, plan, command.actor, principal, "approve", ctx, None, _evidence(command)
    )
    if old is not None and old.revoked_at is None:
        revoke(ledger, old, "extended", ctx)
    ledger.job = ledger.job.but(
        plan=updated,
        extension=None,
        policy_envelope=_proposed(job, plan),
        window_end=stamp(window_end),
        next_notice_at=stamp(next_notice(ctx.now, window_end, ctx.rules)),
    )
    token = issue(job, ledger, Policy.from_payload(plan.payload), TokenKind.AGENT, window_end, ctx)
    effects = [
        Effect(PUBLISH_POLICY, {"policy_hash": plan.plan_hash}),
        Effect(REFRESH_EXECUTOR),
        Effect(ANNOUNCE, {"decision": "approve", "by": principal, "extended": True}),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(
        effects, {"state": ACTIVE, "jti": token.jti, "window_end": stamp(window_end)}
    )


def deny(job: Job, command: Deny, ctx: Ctx) -> Transition:
    plan = _open_plan(job)
    principal = require_principal(command.actor)
    if principal != job.requester.principal:
        _check_approver(job, command.actor, ctx)
    check_plan(job, plan, command.plan_hash, "you answered")
    ledger = Ledger(job, ctx.now)
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
    return close(ledger, DENIED, "denied", principal, ctx)


def withdraw(job: Job, command: Withdraw, ctx: Ctx) -> Transition:
    principal = require_principal(command.actor)
    plan = job.extension if job.extension is not None else job.plan
    if principal not in plan.approvers() and principal not in job.plan.approvers():
        raise refuse("NOTHING_TO_WITHDRAW", "you have not approved this job")
    ledger = Ledger(job, ctx.now)
    target = plan if principal in plan.approvers() else job.plan
    updated = _record_decision(job, ledger, target, command.actor, principal, "withdraw", ctx)
    ledger.job = _with_plan(ledger.job, updated)
    if job.state == PENDING:
        return ledger.finish(
            [Effect(UPDATE_CARDS), Effect(ANNOUNCE, {"decision": "withdraw", "by": principal})]
        )
    if job.state == ACTIVE:
        return begin_end(ledger, END_APPROVAL_REVOKED, principal, ctx)
    raise refuse("TOO_LATE_TO_WITHDRAW", f"the job is {job.state}")
