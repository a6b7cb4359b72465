"""Containment at the window's end: the template terms signed into the WPC, the rollback
step a credential write derives, and the verifier's checks that both ran after the removal."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from engine import catalog
from engine.access import access_from_config
from engine.chain import TOOL_CALL
from engine.containment import ContainSettings, derive_step, describe_left, step_of
from engine.cst import TokenKind
from engine.errors import ConfigError, TemplateError
from engine.job import CLOSED
from engine.lifecycle import Tick
from engine.tools import ToolResult
from engine.verify import verify_bundle
from engine.wpc import PlanRequest, Policy, build_wpc, contain_terms
from tests.corpus.generate import forge, resign
from tests.support.engine_sim import TENANT, JobSim, trust_for
from tests.unit.engine.test_wpc import CA, ROLE

APP = "4f6c1c1e-7a51-5c57-9d43-2b2cf0d8a9e1"
KEY = "0f9a3c0e-1111-4a2b-9c3d-5e6f7a8b9c0d"
# The test_wpc requests (tenant "t-1", principal "u-alice", job "job-1").
WPC_TENANT = ROLE.targets["tenant_id"]


def terms(request: PlanRequest) -> dict[str, Any]:
    payload = build_wpc(request, "did:key:z6MkpublisherX")
    return dict(payload["metadata"]["breakglass"])


def rules_with(**table: Any) -> Any:
    return access_from_config({"entra-role": table, "ca-exclusion": table}, {})


# ------------------------------------------------------------------ terms in the WPC


def test_role_templates_revoke_sessions_at_the_end_by_default() -> None:
    found = terms(ROLE)
    assert found["contain"] == {"revoke_sessions_at_end": True, "rotate_credentials": []}
    assert found["rollback"]["at_end"] == [
        {
            "tool": catalog.REVOKE_SESSIONS,
            "arguments": {"tenant_id": WPC_TENANT, "principal_id": "u-alice"},
        }
    ]


def test_a_ca_exclusion_revokes_its_group_users_sessions_at_the_end() -> None:
    """Sessions obtained while excluded (without the policy's MFA) must not outlive it."""
    found = terms(CA)
    assert found["contain"]["revoke_sessions_at_end"] is True
    assert found["rollback"]["at_end"] == [
        {
            "tool": catalog.REVOKE_GROUP_SESSIONS,
            "arguments": {"tenant_id": WPC_TENANT, "group_id": "g-bg"},
        }
    ]


def test_the_setting_can_turn_revocation_off_and_the_plan_says_so() -> None:
    off = contain_terms(rules_with(revoke_sessions_at_end=False), "entra-role")
    found = terms(replace(ROLE, contain=off))
    assert found["contain"]["revoke_sessions_at_end"] is False
    assert "at_end" not in found["rollback"]


def test_rotation_is_allowed_only_where_the_template_lists_it() -> None:
    plain = Policy.from_payload(build_wpc(ROLE, "did:key:z6MkpublisherX"))
    rotate = contain_terms(rules_with(rotate_credentials=["application_password"]), "entra-role")
    rotating = Policy.from_payload(build_wpc(replace(ROLE, contain=rotate), "did:key:z6MkpX"))
    add = catalog.TOOLS[catalog.ADD_APP_PASSWORD]
    args = {"tenant_id": WPC_TENANT, "application_id": APP, "job_id": "job-1"}
    assert not plain.tool_call_decision(add, args).allowed
    assert rotating.tool_call_decision(add, args).allowed
    assert not rotating.tool_call_decision(add, args | {"tenant_id": "other"}).allowed


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"revoke_sessions_at_end": "yes"}, "true or false"),
        ({"rotate_credentials": ["certificate"]}, "application_password"),
        ({"rotate_credentials": "application_password"}, "application_password"),
    ],
)
def test_bad_settings_are_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        access_from_config({"entra-role": table}, {})


def test_malformed_contain_terms_are_refused() -> None:
    with pytest.raises(TemplateError):
        ContainSettings.from_terms({"revoke_sessions_at_end": True, "rotate_credentials": ["x"]})
    with pytest.raises(TemplateError):
        build_wpc(replace(ROLE, contain={"revoke_sessions_at_end": 1}), "did:key:z6MkpX")


def test_only_a_credential_write_with_a_key_id_derives_a_step() -> None:
    args = {"tenant_id": TENANT, "application_id": APP, "job_id": "job-1"}
    assert derive_step(catalog.ADD_APP_PASSWORD, args, {"key_id": KEY}) == {
        "tool": catalog.REMOVE_APP_PASSWORD,
        "arguments": args | {"key_id": KEY},
    }
    assert derive_step(catalog.ADD_APP_PASSWORD, args, {}) is None
    assert derive_step(catalog.WRITE_ROLE, args, {"key_id": KEY}) is None


# ------------------------------------------------------------------ a whole job


def rotating_job(add: bool = True) -> JobSim:
    """A role job whose agent adds an application password during the window."""
    sim = JobSim()
    table = {
        "rotate_credentials": ["application_password"],
        "principals": ["u-alice"],
        "roles": ["r-ga"],
    }
    sim.rules = replace(sim.rules, access=access_from_config({"entra-role": table}, {}))
    sim.request()
    sim.approve_both()
    sim.run_write_and_verify()
    if add:
        sim.advance(seconds=5)
        args = {"tenant_id": TENANT, "application_id": APP, "job_id": "job-0001"}
        sim.call(catalog.ADD_APP_PASSWORD, args, result=ToolResult("success", {"key_id": KEY}))
    return sim


def test_a_password_added_in_the_window_is_removed_at_the_end_and_verifies() -> None:
    sim = rotating_job()
    assert sim.job is not None
    (record,) = sim.job.derived_rollback
    assert "step" not in record  # re-derived from the arguments and result where needed
    step = step_of(record)
    assert step is not None
    assert step["arguments"]["key_id"] == KEY
    assert sim.job.write_done  # the credential write is not "the write" of the plan
    sim.advance(minutes=30)
    sim.do(Tick())
    sim.run_rollback()
    assert sim.job.state == CLOSED
    tools = [
        r.envelope["payload"]["tool_name"]
        for r in sim.records
        if r.event["event_type"] == TOOL_CALL and r.envelope is not None
    ]
    # After the removal and its read: the password removed, then the sessions revoked (then
    # what the privilege was used for is read).
    assert tools[-3:] == [
        catalog.REMOVE_APP_PASSWORD,
        catalog.REVOKE_SESSIONS,
        catalog.READ_ACTIVITY,
    ]
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons


def test_dropping_the_removal_receipt_fails_verification_naming_the_key() -> None:
    sim = rotating_job()
    sim.advance(minutes=30)
    sim.do(Tick())
    sim.run_rollback()

    def drop_removal(entries: list[dict[str, Any]]) -> None:
        entries[:] = [
            e
            for e in entries
            if e.get("payload", {}).get("tool_name") != catalog.REMOVE_APP_PASSWORD
        ]

    report = verify_bundle(forge(sim, drop_removal), trust_for(sim.keys))
    assert report.reason_codes == ["BREAKGLASS_CONTAINMENT_MISSING"]
    assert KEY in report.reasons[0]


def test_a_derived_step_edited_or_dropped_from_the_bundle_is_unbound() -> None:
    sim = rotating_job()
    sim.advance(minutes=30)
    sim.do(Tick())
    sim.run_rollback()
    bundle = sim.bundle()
    edited = copy.deepcopy(bundle)
    run = edited["payload"]["metadata"]["breakglass"]["run"]
    run["derived_rollback"][0]["result"]["key_id"] = "another-key"
    report = verify_bundle(resign(edited, sim.keys.agent), trust_for(sim.keys))
    assert "BREAKGLASS_DERIVED_STEP_UNBOUND" in report.reason_codes
    del run["derived_rollback"]
    report = verify_bundle(resign(edited, sim.keys.agent), trust_for(sim.keys))
    assert report.reason_codes == ["BREAKGLASS_DERIVED_STEP_UNBOUND"]


def test_a_record_still_carrying_its_step_must_carry_the_derived_one() -> None:
    """Bundles made before the step was dropped from the record still verify; a carried
    step that is not the one the receipted write derives is unbound."""
    sim = rotating_job()
    sim.advance(minutes=30)
    sim.do(Tick())
    sim.run_rollback()
    bundle = copy.deepcopy(sim.bundle())
    (record,) = bundle["payload"]["metadata"]["breakglass"]["run"]["derived_rollback"]
    record["step"] = step_of(record)
    report = verify_bundle(resign(bundle, sim.keys.agent), trust_for(sim.keys))
    assert report.valid, report.reasons
    record["step"]["arguments"]["key_id"] = "another-key"
    report = verify_bundle(resign(bundle, sim.keys.agent), trust_for(sim.keys))
    assert "BREAKGLASS_DERIVED_STEP_UNBOUND" in report.reason_codes


def test_the_agent_cannot_add_a_password_where_rotation_is_not_listed() -> None:
    sim = JobSim()
    sim.request()
    sim.approve_both()
    args = {"tenant_id": TENANT, "application_id": APP, "job_id": "job-0001"}
    before = sim.job
    refused = sim.call(
        catalog.ADD_APP_PASSWORD, args, result=ToolResult("success", {"key_id": KEY})
    )
    receipt = next(r for r in refused.records if r.event["event_type"] == TOOL_CALL)
    assert receipt.envelope is not None
    assert receipt.envelope["payload"]["result_status"] == "error"
    assert refused.job.derived_rollback == ()
    assert before is not None
    assert refused.job.write_done == before.write_done


def test_the_rollback_token_may_remove_but_never_add() -> None:
    sim = rotating_job(add=False)
    assert sim.job is not None
    policy = Policy.from_payload(sim.job.plan.payload)
    rollback_tools = policy.tools_with_role({catalog.TOOLS[catalog.REMOVE_ROLE].role})
    assert catalog.REMOVE_APP_PASSWORD in rollback_tools
    sim.advance(minutes=30)
    sim.do(Tick())
    args = {"tenant_id": TENANT, "application_id": APP, "job_id": "job-0001"}
    token = sim.token_string(TokenKind.ROLLBACK)
    refused = sim.call(catalog.ADD_APP_PASSWORD, args, token=token)
    receipt = next(r for r in refused.records if r.event["event_type"] == TOOL_CALL)
    assert receipt.envelope is not None
    assert receipt.envelope["payload"]["result_status"] == "error"


def test_what_was_left_is_named_in_plain_words() -> None:
    group = {
        "tool": catalog.REVOKE_GROUP_SESSIONS,
        "arguments": {"tenant_id": "t", "group_id": "g"},
    }
    user = {"tool": catalog.REVOKE_SESSIONS, "arguments": {"tenant_id": "t", "principal_id": "p"}}
    key = {
        "tool": catalog.REMOVE_APP_PASSWORD,
        "arguments": {"tenant_id": "t", "application_id": "a", "key_id": "k", "job_id": "j"},
    }
    assert (
        describe_left(group) == "sign-in sessions of the users of group g not revoked in tenant t"
    )
    assert describe_left(user) == "sign-in sessions of principal p not revoked in tenant t"
    assert describe_left(key) == (
        "application a still holds password keyId k added in the window, in tenant t"
    )
