"""The gateway's decision: one test per refusal reason, each asserting the reason, the signed
refusal receipt, and that the refusal changed nothing else (no write, no token, same state)."""

from typing import Any

import pytest

from engine import catalog, chain
from engine.containment import AGENT_CALL_LIMIT
from engine.cst import GATEWAY_AUDIENCE, PROXY_AUDIENCE, TokenKind, sign_token, token_scope_hash
from engine.did import Signer
from engine.errors import CommandRefused, GatewayRefusal
from engine.gateway import MAX_ARGUMENT_CHARS, UNEXPECTED_TARGET, GatewayView, ToolCall, decide
from engine.job import ACTIVE, ROLLING_BACK
from engine.lifecycle import Kill, Tick
from engine.receipts import content_hash
from engine.timeutil import epoch
from engine.verify import verify_bundle
from engine.wpc import Policy
from tests.support.engine_sim import JobSim, trust_for

ROGUE = Signer.from_seed(b"r" * 32)


def active() -> JobSim:
    sim = JobSim()
    sim.request()
    sim.advance(minutes=1)
    sim.approve_both()
    sim.advance(seconds=5)
    return sim


def view(sim: JobSim) -> GatewayView:
    assert sim.job is not None
    return GatewayView(
        job_id=sim.job.job_id,
        policy=Policy.from_payload(sim.job.plan.payload),
        trusted_issuers={sim.keys.issuer.did},
        is_revoked=sim.revoked.__contains__,
        tool_receipts=sim.job.tool_receipts,
    )


def claims(sim: JobSim, kind: str = TokenKind.AGENT) -> dict[str, Any]:
    assert sim.job is not None
    token = sim.job.token(kind)
    assert token is not None
    return dict(token.claims)


def resigned(sim: JobSim, signer: Signer | None = None, **changes: Any) -> str:
    """The agent token's claims changed, the scope hash recomputed, signed again."""
    edited = claims(sim) | changes
    edited["token_scope_hash_b64u"] = token_scope_hash(edited)
    return sign_token(edited, signer or sim.keys.issuer)


def refused(sim: JobSim, tool: str, arguments: Any, token: str | None = None) -> GatewayRefusal:
    """Decide (must refuse), then receipt the refusal through the lifecycle like the service."""
    presented = token if token is not None else sim.token_string()
    with pytest.raises(GatewayRefusal) as err:
        decide(ToolCall(tool, arguments), presented, view(sim), sim.now)
    before = sim.job
    assert before is not None
    transition = sim.call(tool, arguments, token=presented)
    receipts = [r for r in transition.records if r.event["event_type"] == chain.TOOL_CALL]
    assert len(receipts) == 1
    assert receipts[0].envelope is not None
    payload = receipts[0].envelope["payload"]
    assert payload["result_status"] == "error"
    assert payload["result_hash_b64u"] == content_hash({"refused": err.value.reason})
    after = transition.job
    assert not after.write_done
    assert after.window_end == before.window_end
    if err.value.kill_trigger is None:
        assert after.state == before.state
        assert after.tokens == before.tokens
    return err.value


def test_the_planned_call_is_allowed() -> None:
    sim = active()
    tool, arguments = sim.planned("action")
    allowed = decide(ToolCall(tool, arguments), sim.token_string(), view(sim), sim.now)
    assert allowed.spec.name == catalog.WRITE_ROLE
    assert allowed.statement == "AllowPrivilegedAction"


@pytest.mark.parametrize("name", ["run_shell", "bash.exec", "sudo", "elevate_me", "py.eval"])
def test_denied_tool_names_are_refused_before_anything_else(name: str) -> None:
    sim = active()
    refusal = refused(sim, name, {})
    assert refusal.reason == "TOOL_DENIED"
    assert refusal.kill_trigger is None


def test_unknown_tool_is_refused() -> None:
    assert refused(active(), "breakglass.microsoft_graph.delete_tenant", {}).reason == (
        "TOOL_UNKNOWN"
    )


def test_tool_in_the_catalog_but_outside_the_token_scope_is_refused() -> None:
    sim = active()
    arguments = {"tenant_id": "t", "policy_id": "p", "group_id": "g", "job_id": "job-0001"}
    reason = refused(sim, catalog.EXCLUDE_GROUP, arguments).reason
    assert reason == "TOKEN_INSUFFICIENT_SCOPE"


@pytest.mark.parametrize(
    "step", [("rollback", "steps", "0"), ("rollback", "containment", "0"), ("activity",)]
)
def test_agent_token_may_not_roll_back_contain_or_read_activity(step: tuple[str, ...]) -> None:
    # The engine runs these with its own token; the agent's could sign the responder out.
    sim = active()
    tool, arguments = sim.planned(*step)
    refusal = refused(sim, tool, arguments)
    assert refusal.reason == "TOKEN_INSUFFICIENT_SCOPE"
    assert tool in refusal.detail


def test_rollback_token_may_not_write() -> None:
    sim = active()
    sim.advance(minutes=31)
    sim.do(Tick())  # the window ended: the rollback token is the only live one
    tool, arguments = sim.planned("action")
    refusal = refused(sim, tool, arguments, token=sim.token_string(TokenKind.ROLLBACK))
    assert refusal.reason == "TOKEN_INSUFFICIENT_SCOPE"


def test_tool_the_token_names_but_the_policy_does_not_allow_is_refused() -> None:
    # A trusted issuer's token whose scope is wider than the pinned WPC: the WPC decides.
    sim = active()
    scope = [*claims(sim)["scope"], f"tool:execute:{catalog.EXCLUDE_GROUP}"]
    token = resigned(sim, scope=sorted(scope))
    arguments = {"tenant_id": "t", "policy_id": "p", "group_id": "g", "job_id": "job-0001"}
    refusal = refused(sim, catalog.EXCLUDE_GROUP, arguments, token=token)
    assert refusal.reason == "TOOL_NOT_ALLOWED"
    assert "NO_ALLOW" in refusal.detail


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda a: ["not", "an", "object"], "not an object"),
        (lambda a: a | {"surprise": "x"}, "unknown ['surprise']"),
        (lambda a: {k: v for k, v in a.items() if k != "principal_id"}, "missing ['principal_id']"),
        (lambda a: a | {"principal_id": 7}, "principal_id has the wrong type"),
        (lambda a: a | {"duration_minutes": "30"}, "duration_minutes has the wrong type"),
        (lambda a: a | {"duration_minutes": True}, "duration_minutes has the wrong type"),
        (lambda a: a | {"justification": "x" * (MAX_ARGUMENT_CHARS + 1)}, "wrong type or size"),
    ],
)
def test_malformed_write_arguments_are_refused(change: Any, detail: str) -> None:
    sim = active()
    tool, arguments = sim.planned("action")
    refusal = refused(sim, tool, change(arguments))
    assert refusal.reason == "ARGUMENTS_INVALID"
    assert detail in refusal.detail


@pytest.mark.parametrize(("expect", "detail"), [(1, "wrong type"), ("maybe", "not one of")])
def test_read_with_an_expectation_outside_its_enum_is_refused(expect: Any, detail: str) -> None:
    sim = active()
    tool, arguments = sim.planned("verify_action")
    refusal = refused(sim, tool, arguments | {"expect": expect})
    assert refusal.reason == "ARGUMENTS_INVALID"
    assert detail in refusal.detail


def test_another_principal_is_out_of_scope_and_kills_the_job() -> None:
    sim = active()
    tool, arguments = sim.planned("action")
    refusal = refused(sim, tool, arguments | {"principal_id": "u-mallory"})
    assert refusal.reason == "TARGET_OUT_OF_SCOPE"
    assert refusal.kill_trigger == UNEXPECTED_TARGET
    assert sim.job is not None
    assert sim.job.state == ROLLING_BACK


def test_job_marker_naming_another_job_is_out_of_scope_and_kills_the_job() -> None:
    sim = active()
    tool, arguments = sim.planned("action")
    refusal = refused(sim, tool, arguments | {"job_id": "job-9999"})
    assert refusal.reason == "TARGET_OUT_OF_SCOPE"
    assert refusal.detail == ("job marker names another job")
    assert refusal.kill_trigger == UNEXPECTED_TARGET
    assert sim.job is not None
    assert sim.job.state == ROLLING_BACK


def test_duration_beyond_the_token_lifetime_is_refused() -> None:
    sim = active()
    sim.advance(minutes=20)  # 30-minute window: about 10 minutes left
    tool, arguments = sim.planned("action")
    refusal = refused(sim, tool, arguments)
    assert refusal.reason == "ARGUMENT_BEYOND_WINDOW"


def _token_cases(sim: JobSim) -> dict[str, str]:
    now = epoch(sim.now)
    base = sim.token_string()
    head, body, signature = base.split(".")
    return {
        "TOKEN_MALFORMED": "not-a-jws",
        "TOKEN_UNTRUSTED_ISSUER": resigned(sim, signer=ROGUE),
        "TOKEN_SIGNATURE_INVALID": f"{head}.{body}.{signature[:-4]}AAAA",
        "TOKEN_EXPIRED": resigned(sim, iat=now - 3600, exp=now - 600),
        "TOKEN_NOT_YET_VALID": resigned(sim, iat=now + 600),
        "TOKEN_WRONG_JOB": resigned(sim, mission_id="job-9999"),
        "TOKEN_WRONG_POLICY": resigned(sim, policy_hash_b64u="A" * 43),
        "TOKEN_SCOPE_HASH_MISMATCH": sign_token(
            claims(sim) | {"scope": ["model:invoke"]}, sim.keys.issuer
        ),
        "TOKEN_WRONG_AUDIENCE": resigned(sim, aud=[PROXY_AUDIENCE]),
    }


@pytest.mark.parametrize(
    "reason",
    [
        "TOKEN_MALFORMED",
        "TOKEN_UNTRUSTED_ISSUER",
        "TOKEN_SIGNATURE_INVALID",
        "TOKEN_EXPIRED",
        "TOKEN_NOT_YET_VALID",
        "TOKEN_WRONG_JOB",
        "TOKEN_WRONG_POLICY",
        "TOKEN_SCOPE_HASH_MISMATCH",
        "TOKEN_WRONG_AUDIENCE",
    ],
)
def test_token_refusals_come_first(reason: str) -> None:
    sim = active()
    tool, arguments = sim.planned("action")
    assert refused(sim, tool, arguments, token=_token_cases(sim)[reason]).reason == reason


def test_revoked_token_is_refused() -> None:
    sim = active()
    token = sim.token_string()
    sim.revoked.add(claims(sim)["jti"])
    tool, arguments = sim.planned("action")
    assert refused(sim, tool, arguments, token=token).reason == "TOKEN_REVOKED"


def test_gateway_audience_is_what_the_gateway_accepts() -> None:
    sim = active()
    token = resigned(sim, aud=[GATEWAY_AUDIENCE])
    tool, arguments = sim.planned("verify_action")
    assert decide(ToolCall(tool, arguments), token, view(sim), sim.now).spec.name == tool
    assert sim.job is not None
    assert sim.job.state == ACTIVE


def test_an_agent_past_its_share_of_the_bundle_is_refused_and_its_flood_is_not_chained() -> None:
    # A bundle holds at most 1000 tool receipts: 1000 refused calls of a looping agent made
    # the bundle fail verification (a black-box run). The agent's share is AGENT_CALL_LIMIT.
    sim = active()
    tool, arguments = sim.planned("verify_action")
    for _ in range(AGENT_CALL_LIMIT):
        sim.call(tool, arguments)
    assert sim.job is not None
    assert sim.job.tool_receipts == AGENT_CALL_LIMIT
    assert refused(sim, tool, arguments).reason == "CALL_LIMIT"  # the first one is chained
    with pytest.raises(CommandRefused) as err:  # the next ones are not
        sim.call("run_shell", {})
    assert err.value.reason == "RECEIPT_LIMIT"
    assert sim.job.tool_receipts == AGENT_CALL_LIMIT + 1
    sim.do(Kill(sim.job.requester))
    sim.run_rollback()  # the rollback's calls still have room
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons
