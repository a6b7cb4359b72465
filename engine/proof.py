"""The proof bundle of a job: everything needed to verify it offline, from the job and its chain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.bundle import build_bundle, trust_pulse
from engine.job import Job
from engine.lifecycle import Keys
from engine.ports import ChainRecord
from engine.receipts import TOOL_RECEIPT
from engine.timeutil import parse_iso


def run_summary(job: Job) -> dict[str, Any]:
    """Run metadata carried in the bundle (compact: the reference caps metadata at 16 KB; the
    template, ticket and justification are in the signed WPC, so not repeated here)."""
    run: dict[str, Any] = {
        "job_id": job.job_id,
        "requester": job.requester.principal,
        "approvers": job.plan.approvers(),
        "window_start": job.window_start,
        "window_end": job.window_end,
        "ended_at": job.ended_at,
        "outcome": job.state,
        "end_reason": job.end_reason,
        "ended_by": job.ended_by,
        "rollback_verified": job.rollback_verified,
        "still_privileged": list(job.still_privileged),
        "simulated": job.simulated,
        "external_refs": dict(job.external_refs),
        **({"activity": dict(job.activity)} if job.activity is not None else {}),
    }
    if job.derived_rollback:  # absent, not empty: bundles without one are unchanged
        run["derived_rollback"] = [dict(record) for record in job.derived_rollback]
    return run


def bundle_for_job(
    job: Job, records: Sequence[ChainRecord], keys: Keys, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(proof bundle envelope, trust pulse) of a resolved job. Does NOT verify them."""
    ordered = sorted(records, key=lambda r: r.seq)
    artifacts = [r.envelope for r in ordered if r.envelope is not None]
    tools = [a["payload"]["tool_name"] for a in artifacts if a["envelope_type"] == TOOL_RECEIPT]
    started = parse_iso(job.created_at)
    pulse = trust_pulse(
        run_id=job.job_id, agent_did=keys.agent.did, tool_names=tools, started=started, ended=now
    )
    bundle = build_bundle(
        run_id=job.job_id,
        events=[r.event for r in ordered],
        artifacts=artifacts,
        policies=job.policies,
        token_claims=[t.claims for t in job.tokens],
        run=run_summary(job),
        pulse=pulse,
        signer=keys.agent,
        at=now,
    )
    return bundle, pulse
