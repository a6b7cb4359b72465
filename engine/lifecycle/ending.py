"""Transitions that end a window and close a job: kill, done, time passing, the rollback
and the terminal record."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from engine import chain
from engine.bundle import terminal_record
from engine.containment import unrecorded_left
from engine.cst import TokenKind
from engine.job import (
    ACTIVE,
    CLOSED,
    END_DONE,
    END_KILL,
    END_TIMEBOX,
    EXPIRED,
    FAILED,
    KILL_REASONS,
    KILLED,
    PENDING,
    ROLLING_BACK,
    Job,
    describe_grant,
    stamp,
)
from engine.lifecycle.commands import (
    ANNOUNCE,
    DELAY_REASONS,
    ESCALATE,
    EXECUTOR_FAILURES,
    FINISH,
    HALT_EXECUTOR,
    NOTICE,
    RUN_ROLLBACK,
    UPDATE_CARDS,
    Ctx,
    Done,
    Effect,
    ExecutorFailed,
    Kill,
    RemovalDelayed,
    RollbackFinished,
    Rules,
    Transition,
    refuse,
    require_principal,
)
from engine.lifecycle.ledger import Ledger, issue, revoke
from engine.timeutil import parse_iso
from engine.wpc import Policy


def kill(job: Job, command: Kill, ctx: Ctx) -> Transition:
    """Anyone in the incident channel may kill: stopping is always the safe direction."""
    who = command.actor.principal or command.actor.chat_identity
    ledger = Ledger(job, ctx.now)
    if job.state == PENDING:
        return close(ledger, KILLED, END_KILL, who, ctx)
    if job.state == ACTIVE:
        return begin_end(ledger, END_KILL, who, ctx)
    raise refuse("ALREADY_ENDING", "the job is already rolling back")


def done(job: Job, command: Done, ctx: Ctx) -> Transition:
    principal = require_principal(command.actor)
    if job.state != ACTIVE:
        raise refuse("NOT_ACTIVE", f"the job is {job.state}")
    if principal != job.requester.principal and principal not in job.plan.approvers():
        raise refuse("NOT_A_PARTICIPANT", "only the requester or an approver can end early")
    return begin_end(Ledger(job, ctx.now), END_DONE, principal, ctx)


def next_notice(now: datetime, end: datetime, rules: Rules) -> datetime:
    """The next countdown notice: every ``notice_every``, every minute in the final stretch."""
    left = end - now
    if left <= rules.notice_final_stretch:
        step = rules.notice_final_every
    else:
        step = min(rules.notice_every, left - rules.notice_final_stretch)
    return min(now + step, end)


def tick(job: Job, ctx: Ctx) -> Transition:
    ledger = Ledger(job, ctx.now)
    if job.state == PENDING and ctx.now >= parse_iso(job.expires_at):
        return close(ledger, EXPIRED, "expired_unapproved", None, ctx)
    end = job.window_end_at()
    if job.state == ACTIVE and end is not None:
        if ctx.now >= end:
            return begin_end(ledger, END_TIMEBOX, None, ctx)
        if job.next_notice_at and ctx.now >= parse_iso(job.next_notice_at):
            left = end - ctx.now
            warning = left <= ctx.rules.notice_final_stretch
            ledger.job = job.but(next_notice_at=stamp(next_notice(ctx.now, end, ctx.rules)))
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


def begin_end(ledger: Ledger, reason: str, by: str | None, ctx: Ctx) -> Transition:
    """Revoke the agent token first (in this very transaction), then hand over to rollback."""
    job = ledger.job
    agent = job.token(TokenKind.AGENT)
    if agent is not None and agent.revoked_at is None:
        revoke(ledger, agent, reason, ctx)
    policy = Policy.from_payload(job.plan.payload)
    issue(job, ledger, policy, TokenKind.ROLLBACK, ctx.now + _rollback_ttl(policy, ctx), ctx)
    ledger.job = ledger.job.but(
        state=ROLLING_BACK, end_reason=reason, ended_by=by, ended_at=stamp(ctx.now), extension=None
    )
    effects = [Effect(HALT_EXECUTOR), Effect(RUN_ROLLBACK), Effect(UPDATE_CARDS)]
    return ledger.finish(effects, {"state": ROLLING_BACK, "reason": reason})


def _rollback_ttl(policy: Policy, ctx: Ctx) -> timedelta:
    return min(ctx.rules.rollback_token_ttl, timedelta(seconds=policy.cst_max_ttl_seconds))


def renew_rollback(job: Job, ctx: Ctx) -> Transition:
    if job.state != ROLLING_BACK:
        raise refuse("NOT_ROLLING_BACK", f"the job is {job.state}")
    ledger = Ledger(job, ctx.now)
    old = job.token(TokenKind.ROLLBACK)
    if old is not None and old.revoked_at is None:
        revoke(ledger, old, "renewed", ctx)
    policy = Policy.from_payload(job.plan.payload)
    token = issue(
        job, ledger, policy, TokenKind.ROLLBACK, ctx.now + _rollback_ttl(policy, ctx), ctx
    )
    return ledger.finish([Effect(UPDATE_CARDS)], {"state": ROLLING_BACK, "jti": token.jti})


def executor_failed(job: Job, command: ExecutorFailed, ctx: Ctx) -> Transition:
    """The executor cannot do the work (its write failed, or it crashed): end the window
    now, so the rollback undoes whatever may have happened and the job ends by the facts."""
    if command.reason not in EXECUTOR_FAILURES:
        raise refuse("INVALID_REASON", f"not an executor failure: {command.reason[:40]}")
    if job.state != ACTIVE:
        raise refuse("NOT_ACTIVE", f"the job is {job.state}")
    t = begin_end(Ledger(job, ctx.now), command.reason, "executor", ctx)
    said = Effect(ANNOUNCE, {"event": command.reason, "detail": command.detail[:300]})
    return replace(t, effects=(*t.effects, said))


def removal_delayed(job: Job, command: RemovalDelayed, ctx: Ctx) -> Transition:
    """The tenant refuses the removal until ``not_before`` (early, or its principal was
    deleted: ``command.reason`` is the event): tell the channel when it will happen and what
    contained the principal meanwhile. The rollback goes on waiting. No chain record."""
    if job.state != ROLLING_BACK:
        raise refuse("NOT_ROLLING_BACK", f"the job is {job.state}")
    if command.reason not in DELAY_REASONS:
        raise refuse("INVALID_REASON", f"not a delayed removal: {command.reason[:40]}")
    when = stamp(command.not_before)
    detail = {"event": command.reason, "not_before": when, "contained": list(command.contained)}
    effects = [Effect(ANNOUNCE, detail), Effect(UPDATE_CARDS)]
    return Ledger(job, ctx.now).finish(effects, {"state": ROLLING_BACK, "not_before": when})


def rollback_finished(job: Job, command: RollbackFinished, ctx: Ctx) -> Transition:
    """The rollback's verdict. An unverified rollback always names what is still
    privileged, so ``failed`` and "rollback verified" never contradict each other."""
    if job.state != ROLLING_BACK:
        raise refuse("NOT_ROLLING_BACK", f"the job is {job.state}")
    ledger = Ledger(job, ctx.now)
    for token in job.tokens:
        if token.revoked_at is None:
            revoke(ledger, token, "rollback_finished", ctx)
    # A credential write still in doubt is named whatever the rollback reported: nothing
    # removes what no receipt recorded, so such a job never ends as if nothing were left.
    named = tuple(command.still_privileged)
    named += tuple(d for d in unrecorded_left(job.credentials_in_flight) if d not in named)
    rolled_back = command.verified and not named
    still = named or (() if rolled_back else (describe_grant(job),))
    # Verification is part of the policy: a write never read back is a failed job (§5).
    verified = rolled_back and (not job.write_done or job.verified_after_write is True)
    ledger.job = ledger.job.but(
        rollback_verified=rolled_back,
        still_privileged=still,
        rollback_attempts=command.attempts,
        activity=dict(command.activity) if command.activity is not None else None,
    )
    outcome = FAILED
    if verified:
        outcome = KILLED if job.end_reason in KILL_REASONS else CLOSED
    refused = command.refused[:MAX_REFUSED]  # said only if the job fails
    return close(ledger, outcome, job.end_reason or "", job.ended_by, ctx, refused)


MAX_REFUSED = 300  # the refusal told with an escalation: a code, a number and a hint


def close(
    ledger: Ledger, outcome: str, reason: str, by: str | None, ctx: Ctx, refused: str = ""
) -> Transition:
    """Resolve the job: revoke any live token, append the signed terminal record. A
    ``failed`` job escalates, saying what is still privileged and, when the tenant refused
    the rollback, why (``refused``: told, not recorded)."""
    for token in ledger.job.tokens:
        if token.revoked_at is None:
            revoke(ledger, token, reason or outcome, ctx)
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
        escalation: dict[str, Any] = {"still_privileged": list(ledger.job.still_privileged)}
        if ledger.job.write_done and ledger.job.verified_after_write is not True:
            escalation["unverified"] = "the read that must follow the write"
        if refused:
            escalation["refused"] = refused
        effects.append(Effect(ESCALATE, escalation))
    return ledger.finish(effects, {"state": outcome})
