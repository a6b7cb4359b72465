from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import catalog
from engine.did import Signer
from engine.errors import TemplateError, TooLarge, VerificationError
from engine.tools import ToolRole
from engine.wpc import (
    TEMPLATES,
    ModelAllowance,
    PlanRequest,
    Policy,
    build_wpc,
    plan_calls,
    sign_wpc,
    verify_wpc,
)
from tests.support.engine_sim import role_plan
from tests.support.shared import assert_valid

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PUBLISHER = Signer.from_seed(b"p" * 32)
ROLE = role_plan()
CA = replace(
    ROLE,
    template="ca-exclusion",
    targets={"tenant_id": "t-1", "policy_id": "ca-1", "group_id": "g-bg"},
)


def policy(request: PlanRequest = ROLE) -> Policy:
    return Policy.from_payload(
        build_wpc(request, PUBLISHER.did, model=ModelAllowance("scripted", "runbook"))
    )


@pytest.mark.parametrize("request_", [ROLE, CA])
def test_payload_validates_against_the_reference_schema(request_: PlanRequest) -> None:
    payload = build_wpc(request_, PUBLISHER.did, model=ModelAllowance("scripted", "runbook"))
    assert_valid("work_policy_contract.v2.json", payload)
    terms = payload["metadata"]["breakglass"]
    assert terms["approvals"] == {
        "approver_must_not_equal_requester": True,
        "distinct_approvers": True,
        "min_approvers": 2,
    }
    assert terms["timebox"]["cst_max_ttl_minutes"] == 30
    assert terms["timebox"]["no_renew_without_reapproval"] is True
    assert terms["rollback"]["steps"]


def test_role_template_allows_exactly_its_tools_on_exactly_its_targets() -> None:
    pol = policy()
    args = dict(ROLE.targets)
    write = catalog.TOOLS[catalog.WRITE_ROLE]
    assert pol.tool_call_decision(write, args).allowed
    for key, other in (("principal_id", "u-mallory"), ("role_definition_id", "r-x")):
        decision = pol.tool_call_decision(write, {**args, key: other})
        assert (decision.allowed, decision.reason) == (False, "TARGET_OUT_OF_SCOPE")
    ca = catalog.TOOLS[catalog.EXCLUDE_GROUP]
    assert (
        pol.tool_call_decision(ca, {"tenant_id": "t-1", "policy_id": "p", "group_id": "g"}).reason
        == "NO_ALLOW"
    )


def test_ids_compare_exactly_no_case_folding_or_lookalikes() -> None:
    write = catalog.TOOLS[catalog.WRITE_ROLE]
    for lookalike in ("U-alice", "u-alice ", "u-аlice", "u-alice\u200b"):
        assert (
            not policy()
            .tool_call_decision(write, {**ROLE.targets, "principal_id": lookalike})
            .allowed
        )


def test_explicit_deny_wins_and_default_is_deny() -> None:
    pol = policy()
    assert pol.evaluate("tool:execute", ["*"], {"Tool:Name": "run_shell"}).reason == "EXPLICIT_DENY"
    assert pol.evaluate("side_effect:network_egress", ["*"], {}).reason == "EXPLICIT_DENY"
    assert pol.evaluate("tool:execute", ["x"], {"Tool:Name": "other"}).reason == "NO_ALLOW"


def test_unknown_context_key_makes_the_condition_false() -> None:
    pol = policy()
    assert pol.allows_model("scripted", "runbook").allowed
    assert not pol.evaluate("model:invoke", ["*"], {"Model:Provider": "scripted"}).allowed
    assert not pol.allows_model("openai", "runbook").allowed


def test_rollback_token_tools_are_read_and_rollback_only() -> None:
    tools = policy().tools_with_role({ToolRole.READ, ToolRole.ROLLBACK})
    assert sorted(tools) == sorted(
        [catalog.READ_ROLE, catalog.REMOVE_ROLE, catalog.REVOKE_SESSIONS, catalog.READ_ACTIVITY]
    )


def test_role_template_plans_a_containment_step_on_exactly_its_principal() -> None:
    pol = policy()
    containment = pol.terms["rollback"]["containment"]
    assert containment == [
        {
            "tool": catalog.REVOKE_SESSIONS,
            "arguments": {"tenant_id": "t-1", "principal_id": "u-alice"},
        }
    ]
    revoke = catalog.TOOLS[catalog.REVOKE_SESSIONS]
    assert pol.tool_call_decision(revoke, containment[0]["arguments"]).allowed
    other = {"tenant_id": "t-1", "principal_id": "u-mallory"}
    assert pol.tool_call_decision(revoke, other).reason == "TARGET_OUT_OF_SCOPE"


def test_ca_template_has_no_containment_and_allows_one_minute() -> None:
    pol = Policy.from_payload(build_wpc(replace(CA, minutes=1), PUBLISHER.did))
    assert "containment" not in pol.terms["rollback"]
    assert catalog.REVOKE_SESSIONS not in pol.tools_with_role(set(ToolRole))


@pytest.mark.parametrize("minutes", [1, 4])
def test_role_window_shorter_than_pim_allows_is_refused_with_the_reason(minutes: int) -> None:
    with pytest.raises(TemplateError, match="between 5 and 60 minutes") as err:
        build_wpc(replace(ROLE, minutes=minutes), PUBLISHER.did)
    assert "shorter than 5 minutes" in str(err.value)
    assert Policy.from_payload(build_wpc(replace(ROLE, minutes=5), PUBLISHER.did))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"template": "delete-tenant"}, "unknown template"),
        ({"minutes": 0}, "between 5 and 60"),
        ({"minutes": 61}, "61 minutes is above the 60-minute maximum"),
        ({"minutes": True}, "whole number"),
        ({"justification": "  "}, "justification"),
        ({"ticket": ""}, "ticket"),
        (
            {"targets": {"tenant_id": "t", "principal_id": "a b", "role_definition_id": "r"}},
            "plain id",
        ),
        ({"targets": {**ROLE.targets, "group_id": "g"}}, "unexpected targets"),
        # "$" would match before a final newline: an id must end where its characters end.
        ({"targets": {**ROLE.targets, "role_definition_id": "r\n"}}, "plain id"),
        ({"job_id": "job-1\n"}, "job"),
    ],
)
def test_requests_outside_the_template_are_refused(change: dict[str, Any], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        build_wpc(replace(ROLE, **change), PUBLISHER.did)


def test_action_without_a_derivable_rollback_is_not_eligible() -> None:
    no_inverse = replace(TEMPLATES["entra-role"], write_tool=catalog.REVOKE_SESSIONS)
    with pytest.raises(TemplateError, match="NOT_ELIGIBLE"):
        plan_calls(no_inverse, ROLE)


def test_sign_verify_and_hash_is_jcs() -> None:
    payload = build_wpc(ROLE, PUBLISHER.did)
    env = sign_wpc(payload, PUBLISHER, NOW)
    pol = verify_wpc(env, {PUBLISHER.did})
    assert pol.policy_hash_b64u == env["payload_hash_b64u"]
    with pytest.raises(VerificationError) as err:
        verify_wpc(env, {Signer.generate().did})
    assert err.value.code == "SIGNER_NOT_ALLOWED"


def test_policy_above_64_kib_is_refused() -> None:
    payload = build_wpc(ROLE, PUBLISHER.did)
    payload["metadata"]["padding"] = "x" * (65 * 1024)
    with pytest.raises(TooLarge):
        sign_wpc(payload, PUBLISHER, NOW)


def test_payload_that_is_not_a_wpc_fails_schema() -> None:
    env = sign_wpc(build_wpc(ROLE, PUBLISHER.did), PUBLISHER, NOW)
    env["payload"] = {"policy_version": "1"}
    with pytest.raises(VerificationError) as err:
        verify_wpc(env, {PUBLISHER.did})
    assert err.value.code == "SCHEMA_VALIDATION_FAILED"
