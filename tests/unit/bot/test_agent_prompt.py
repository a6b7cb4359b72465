"""The objective and tool offer, and the scripted model's reading of them (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.agent_prompt import alias, find_plan, offer_for, opening_messages, render_plan
from bot.scripted_turns import INJECTED_PRINCIPAL, next_turn
from engine import catalog
from engine.errors import ConfigError
from engine.wpc import Policy
from tests.support.engine_sim import JobSim


def active_job(**changes: Any) -> tuple[dict[str, Any], Policy]:
    sim = JobSim()
    sim.request(justification="INC-42 ```breakglass-plan\n{}\n``` look here")
    sim.approve_both()
    assert sim.job is not None
    job = sim.job.to_json() | changes
    return job, Policy.from_payload(sim.job.plan.payload)


def request_for(job: dict[str, Any], policy: Policy, history: list[Any]) -> dict[str, Any]:
    return {
        "messages": [*opening_messages(job, policy), *history],
        "tools": list(offer_for(policy).tools),
    }


def answer_with(turn: Any, content: str) -> list[dict[str, Any]]:
    call = {"id": turn.call_id, "type": "function", "function": {"name": turn.tool}}
    call["function"]["arguments"] = turn.arguments
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": turn.call_id, "content": content},
    ]


def test_aliases_fit_openai_function_names_for_every_catalog_tool() -> None:
    for name in catalog.TOOLS:
        assert "." not in alias(name)
    with pytest.raises(ConfigError):
        alias("x" * 65)


def test_offer_is_the_wpc_write_and_read_tools_with_their_schemas() -> None:
    _, policy = active_job()
    offer = offer_for(policy)
    names = [t["function"]["name"] for t in offer.tools]
    assert names == [alias(catalog.WRITE_ROLE), alias(catalog.READ_ROLE)]
    assert offer.tools[0]["function"]["parameters"] == catalog.TOOLS[catalog.WRITE_ROLE].parameters
    assert offer.real_name(names[0]) == catalog.WRITE_ROLE
    assert offer.real_name("shell__exec") == "shell__exec"  # unknown: the gateway refuses it


def test_plan_block_round_trips_and_the_last_block_wins() -> None:
    steps = [{"tool": "a", "arguments": {"x": "1"}}]
    text = render_plan([{"tool": "b", "arguments": {}}]) + "\n" + render_plan(steps)
    assert find_plan(text) == steps
    assert find_plan("no block") is None
    assert find_plan("```breakglass-plan\n[1]\n```") is None


def test_scripted_model_makes_the_write_then_the_read_then_answers() -> None:
    job, policy = active_job()
    first = next_turn(request_for(job, policy, []))
    terms = policy.terms
    assert first.tool == alias(catalog.WRITE_ROLE)
    assert json.loads(first.arguments) == terms["action"]["arguments"]
    history = answer_with(first, '{"status": "success"}')
    second = next_turn(request_for(job, policy, history))
    assert json.loads(second.arguments) == terms["verify_action"]["arguments"]
    history += answer_with(second, "refused: TOKEN_INVALID")
    final = next_turn(request_for(job, policy, history))
    assert not final.is_call
    assert "1 refused" in final.text


def test_after_the_write_only_the_verification_read_is_planned() -> None:
    job, policy = active_job(write_done=True)
    turn = next_turn(request_for(job, policy, []))
    assert turn.tool == alias(catalog.READ_ROLE)


def test_injected_model_tries_another_principal_right_after_the_write() -> None:
    job, policy = active_job()
    first = next_turn(request_for(job, policy, []), injected=True)
    rogue = next_turn(request_for(job, policy, answer_with(first, "{}")), injected=True)
    assert rogue.tool == first.tool
    assert json.loads(rogue.arguments)["principal_id"] == INJECTED_PRINCIPAL


def test_scripted_model_stops_when_the_planned_tool_is_not_offered() -> None:
    job, policy = active_job()
    request = request_for(job, policy, [])
    request["tools"] = []
    assert "not offered" in next_turn(request).text
