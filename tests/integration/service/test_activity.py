"""What the privilege was used for (issue 17 §5), end to end: the elevated principal acts in
the simulated tenant during the window; after the rollback the service reads the audit and
sign-in logs under its rollback token, records the summary with the read's receipt in the
job and the bundle, and the audit message says what was done. When the logs cannot be read
the job ends all the same, saying so.

The real Graph adapter against the simulated tenant on loopback, on a manual clock that the
service's injected sleep advances."""

from __future__ import annotations

import json
from typing import Any

from adapters.graph.simulated import Fault
from cards import slack
from cards.job_views import audit_summary_view
from engine import catalog
from engine.activity import READ, UNAVAILABLE
from engine.cst import TokenKind
from engine.job import KILLED, Job
from engine.lifecycle import Kill
from engine.verify import verify_bundle
from tests.integration.service.simulated import (
    IDS,
    ROLE,
    SimEnv,
    approved_job,
    tool_receipts,
)
from tests.support.engine_sim import trust_for


async def elevate_dave_and_end(env: SimEnv, during: Any = None) -> Job:
    """Dave holds the role; ``during`` acts in the tenant; 6 minutes later (PIM allows the
    removal by then) someone presses Kill and the service rolls back."""
    job = await approved_job(
        env, "entra-role", {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    )
    assert job.write_done
    env.clock.advance(60)
    if during is not None:
        during()
    env.clock.advance(300)
    s = env.service
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    await env.settle()
    return await s.load("job-input")


def dave_does_things(env: SimEnv) -> None:
    for victim in ("erin", "bob"):
        env.sim.act(IDS["dave"], "Reset user password", [IDS[victim]])
    for _ in range(3):
        env.sim.sign_in(IDS["dave"])
    env.sim.act(IDS["alice"], "Delete user", [IDS["erin"]])  # not Dave's doing
    env.sim.sign_in(IDS["alice"])


async def audit_message(env: SimEnv, job: Job) -> str:
    """The audit summary as Slack would post it (the same card feeds Teams and the console)."""
    records = await env.service.store.chain(job.job_id)
    names = {IDS["dave"]: "Dave Example"}
    return json.dumps(slack.moment.audit_summary(audit_summary_view(job, records, names, "h")))


async def test_the_bundle_and_the_audit_message_say_what_the_principal_did(
    sim_env: SimEnv,
) -> None:
    job = await elevate_dave_and_end(sim_env, lambda: dave_does_things(sim_env))
    assert job.state == KILLED, job
    assert job.activity is not None
    assert job.activity["status"] == READ
    result = job.activity["result"]
    assert result["audits"]["count"] == 2
    assert result["audits"]["operations"][0]["name"] == "Reset user password"
    assert result["sign_ins"]["count"] == 3
    for log in ("audits", "sign_ins"):
        assert len(result[log]["hash_b64u"]) == 43  # the SHA-256 of exactly what was read
    # The read was a receipted call under the rollback token, after the rollback.
    receipts = await tool_receipts(sim_env)
    (read,) = [r for r in receipts if r["tool_name"] == catalog.READ_ACTIVITY]
    assert read["receipt_id"] == job.activity["receipt_id"]
    rollback = job.token(TokenKind.ROLLBACK)
    assert rollback is not None
    assert read["binding"]["token_scope_hash_b64u"] == rollback.claims["token_scope_hash_b64u"]
    names = [r["tool_name"] for r in receipts]
    assert names.index(catalog.READ_ACTIVITY) > names.index(catalog.REMOVE_ROLE)
    bundle, _ = await sim_env.service.bundle(job)
    assert bundle["payload"]["metadata"]["breakglass"]["run"]["activity"] == job.activity
    report = verify_bundle(bundle, trust_for(sim_env.service.keys))
    assert report.valid, report.reasons
    message = await audit_message(sim_env, job)
    assert "during the window Dave Example did: Reset user password x2" in message
    assert "signed in 3 time(s)" in message
    assert "Delete user" not in message  # Alice's doing, not Dave's


async def test_logs_that_cannot_be_read_leave_the_job_ending_with_unavailable(
    sim_env: SimEnv,
) -> None:
    sim_env.sim.add_fault(Fault("unavailable", method="GET", path="/auditLogs/", times=10_000))
    job = await elevate_dave_and_end(sim_env, lambda: dave_does_things(sim_env))
    assert job.state == KILLED, job  # the first law: it ended, rolled back
    assert job.rollback_verified is True
    assert job.activity is not None
    assert job.activity["status"] == UNAVAILABLE
    assert "did not answer" in job.activity["reason"]
    bundle, _ = await sim_env.service.bundle(job)
    report = verify_bundle(bundle, trust_for(sim_env.service.keys))
    assert report.valid, report.reasons
    assert "activity: unavailable (the tenant did not answer" in await audit_message(sim_env, job)
