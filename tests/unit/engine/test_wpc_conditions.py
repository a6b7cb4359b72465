"""Every condition operator a WPC statement may use, as an Allow and as a Deny."""

from typing import Any

import pytest

from engine import catalog
from engine.wpc import Policy

ISSUER = "did:key:z6MkExample"


def allow_if(op: str, key: str, expected: str, effect: str = "Allow") -> Policy:
    statement: dict[str, Any] = {
        "sid": "Only",
        "effect": effect,
        "actions": ["tool:execute"],
        "resources": ["*"],
        "conditions": {op: {key: expected}},
    }
    statements = [statement]
    if effect == "Deny":  # something for the Deny to take away
        statements.append(
            {"sid": "All", "effect": "Allow", "actions": ["tool:execute"], "resources": ["*"]}
        )
    payload = {
        "policy_version": "2",
        "policy_id": "p",
        "issuer_did": ISSUER,
        "statements": statements,
        "metadata": {"breakglass": {"job_id": "job-1"}},
    }
    return Policy.from_payload(payload)


def allowed(policy: Policy, **context: str) -> bool:
    return policy.evaluate("tool:execute", ["x"], context).allowed


@pytest.mark.parametrize(
    ("op", "expected", "actual", "result"),
    [
        ("StringEquals", "read", "read", True),
        ("StringEquals", "read", "Read", False),
        ("StringNotEquals", "read", "write", True),
        ("StringNotEquals", "read", "read", False),
        ("StringLike", "bg.*.read", "bg.graph.read", True),
        ("StringLike", "bg.?", "bg.xy", False),
        ("StringNotLike", "*shell*", "graph.read", True),
        ("StringNotLike", "*shell*", "run_shell", False),
        ("Bool", "true", "true", True),
        ("Bool", "true", "false", False),
        ("NumericEquals", "5", "5", True),
        ("NumericEquals", "5", "05", True),
        ("NumericEquals", "5", "6", False),
        ("NumericLessThan", "5", "4", True),
        ("NumericLessThan", "5", "5", False),
        ("NumericLessThan", "0", "-1", True),
        ("NumericGreaterThan", "5", "6", True),
        ("NumericGreaterThan", "5", "5", False),
        ("NumericEquals", "5", "five", False),  # not a number: the condition fails
        ("NumericGreaterThan", "x", "6", False),
        ("NumericEquals", "1", "1" * 16, False),  # longer than 15 digits is not a number
    ],
)
def test_operator_as_an_allow_condition(op: str, expected: str, actual: str, result: bool) -> None:
    assert allowed(allow_if(op, "K", expected), K=actual) is result


@pytest.mark.parametrize("op", ["StringEquals", "StringNotLike", "Bool", "NumericEquals"])
def test_missing_context_key_fails_the_condition(op: str) -> None:
    assert not allowed(allow_if(op, "K", "1"))


def test_operator_as_a_deny_condition() -> None:
    deny_shell = allow_if("StringLike", "Tool:Name", "*shell*", effect="Deny")
    assert not allowed(deny_shell, **{"Tool:Name": "run_shell"})
    assert allowed(deny_shell, **{"Tool:Name": catalog.READ_ROLE})
    deny_big = allow_if("NumericGreaterThan", "Minutes", "60", effect="Deny")
    assert not allowed(deny_big, Minutes="61")
    assert allowed(deny_big, Minutes="60")


def test_an_unsupported_operator_never_widens() -> None:
    # Unknown to us: an Allow with it never applies, a Deny with it always does.
    assert not allowed(allow_if("IpAddress", "K", "10.0.0.0/8"), K="10.0.0.1")
    assert not allowed(allow_if("IpAddress", "K", "10.0.0.0/8", effect="Deny"), K="192.0.2.1")


def test_a_tool_call_without_its_target_is_out_of_scope() -> None:
    policy = allow_if("StringEquals", "Tool:Name", catalog.READ_ROLE)
    spec = catalog.TOOLS[catalog.READ_ROLE]
    decision = policy.tool_call_decision(spec, {"tenant_id": "t", "principal_id": "u"})
    assert decision.reason == "TARGET_OUT_OF_SCOPE"
    assert decision.detail == "role missing"
