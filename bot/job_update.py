"""One transition as one compare-and-set write: the new job document with the chain records,
tokens, revocations and approvals it adds, and the idempotency key's stored result."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.grants import job_grant_key
from engine.job import ACTIVE, Job
from engine.lifecycle import Transition
from engine.ports import ApprovalRecord, JobUpdate, Revocation, TokenRecord
from engine.timeutil import from_epoch, parse_iso


def job_update(
    before: Job | None,
    version: int,
    t: Transition,
    key: str | None,
    result: Mapping[str, Any] | None,
) -> JobUpdate:
    """What the store writes for ``t``, expected to find the job at ``version``."""
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
        Revocation(tok.jti, job.job_id, parse_iso(tok.revoked_at), _revocation_record(t, tok.jti))
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
        idempotency_result=dict(result) if key and result is not None else None,
        claim=_claim(before, job),
        release_claims=job.resolved and (before is None or not before.resolved),
    )


def _claim(before: Job | None, job: Job) -> str | None:
    """The grant a write claims: the one the job makes live (its last approval). Another
    replica activating a job on the same grant at the same moment finds the claim taken."""
    activating = job.state == ACTIVE and (before is None or before.state != ACTIVE)
    return job_grant_key(job) if activating else None


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
