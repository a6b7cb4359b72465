"""What an escalation says beside what is left: until when the tenant keeps a role by itself
(the write's PIM schedule end, ``Job.grant_ends_at``) and why the tenant refused the
rollback (``RollbackFinished.refused``: told, never recorded). docs/notes/tenant-refuses-app.md"""

from __future__ import annotations

import json
from typing import Any

from engine import job as states
from engine.job import Job, describe_grant
from engine.lifecycle import ESCALATE, Kill, RollbackFinished, WriteSending
from engine.tools import GRANT_ENDS_AT
from tests.support.engine_sim import BOB, JobSim
from tests.unit.engine.test_lifecycle_failures import active, recorded

END = "2026-02-12T00:35:00Z"
HELD = "holds role"


def granted(sim: JobSim, result: dict[str, Any], status: str = "success") -> Job:
    return sim.do(recorded(sim, "action", result, status)).job


def test_a_role_is_said_held_until_the_end_its_write_said_at_the_latest() -> None:
    sim = active()
    assert "until" not in describe_grant(granted(sim, {"status": "Provisioned"}))
    sim = active()
    job = granted(sim, {GRANT_ENDS_AT: END})
    assert job.grant_ends_at == END
    said = describe_grant(job)
    assert said.startswith("principal ")
    assert HELD in said
    assert said.endswith(f"until {END} at the latest (its PIM schedule ends it)")
    # Kept with the job, and read back; absent when unknown (a replica of the release
    # before reads such documents).
    assert Job.from_json(json.loads(json.dumps(job.to_json()))).grant_ends_at == END
    assert "grant_ends_at" not in active().job.to_json()  # type: ignore[union-attr]


def test_an_end_is_rounded_up_to_the_second_and_kept_in_utc() -> None:
    sim = active()
    job = granted(sim, {GRANT_ENDS_AT: "2026-02-12T01:34:59.200+01:00"})
    assert job.grant_ends_at == END


def test_a_write_that_may_have_landed_with_no_known_end_makes_the_end_unknown() -> None:
    sim = active()
    assert granted(sim, {GRANT_ENDS_AT: END}).grant_ends_at == END
    # An extension's write: the later end wins.
    later = "2026-02-12T01:05:00Z"
    assert granted(sim, {GRANT_ENDS_AT: later}).grant_ends_at == later
    assert granted(sim, {GRANT_ENDS_AT: END}).grant_ends_at == later
    # Refused before it left us: it granted nothing, the end stands.
    refused = {"error": "INVALID_ARGUMENT", "sent": False}
    assert granted(sim, refused, "error").grant_ends_at == later
    # Sent, and no end known (a timeout): it may have granted until any time.
    assert granted(sim, {"error": "GatewayTimeout"}, "error").grant_ends_at is None
    assert granted(sim, {GRANT_ENDS_AT: END}).grant_ends_at is None  # unknown stays unknown
    assert HELD in describe_grant(sim.job)  # type: ignore[arg-type]
    assert "until" not in describe_grant(sim.job)  # type: ignore[arg-type]


def test_no_end_is_said_while_a_write_is_in_flight() -> None:
    sim = active()
    granted(sim, {GRANT_ENDS_AT: END})
    job = sim.do(WriteSending()).job  # another write, whose end nobody knows yet
    assert "until" not in describe_grant(job)


def test_an_exclusion_never_says_an_end() -> None:
    sim = JobSim()
    sim.request(
        template="ca-exclusion",
        targets={
            "tenant_id": "11111111-1111-4111-8111-111111111111",
            "policy_id": "22222222-2222-4222-8222-222222222222",
            "group_id": "33333333-3333-4333-8333-333333333333",
        },
    )
    sim.approve_both()
    job = granted(sim, {GRANT_ENDS_AT: END})
    assert "until" not in describe_grant(job)


def test_why_the_tenant_refused_is_told_with_the_escalation_and_never_recorded() -> None:
    sim = active()
    sim.run_write_and_verify()
    sim.do(Kill(BOB))
    why = "invalid_client AADSTS7000222: the app's client secret has expired"
    t = sim.do(RollbackFinished(verified=False, refused=why + "x" * 400))
    assert t.job.state == states.FAILED
    (escalation,) = [e for e in t.effects if e.kind == ESCALATE]
    assert escalation.detail["refused"].startswith(why)
    assert len(escalation.detail["refused"]) == 300  # bounded
    assert why not in json.dumps(t.job.to_json())
    assert why not in json.dumps(sim.bundle())


def test_a_verified_rollback_says_no_refusal() -> None:
    sim = active()
    sim.run_write_and_verify()
    sim.do(Kill(BOB))
    t = sim.do(RollbackFinished(verified=True, refused="ServiceUnavailable (Graph 503)"))
    assert t.job.state == states.KILLED
    assert [e for e in t.effects if e.kind == ESCALATE] == []
