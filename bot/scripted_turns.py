"""The scripted model's script: what it says next, read from the ``breakglass-plan`` block
of the objective, the tools offered and the history (the planned tool calls in order, then
a final text), and the prompt-injected variant that also targets
:data:`INJECTED_PRINCIPAL`.

Apart from :mod:`bot.scripted_model` (which frames a turn as OpenAI's answer) because the
script is a pure function of the request, tested on its own, and the demo names the
injected principal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.agent_prompt import find_plan

INJECTED_PRINCIPAL = "u-mallory-injected"


@dataclass(frozen=True)
class Turn:
    """The script's next answer: a text, or one tool call (name and JSON arguments)."""

    text: str = ""
    call_id: str = ""
    tool: str = ""
    arguments: str = ""

    @property
    def is_call(self) -> bool:
        return bool(self.tool)


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _script(messages: Sequence[Mapping[str, Any]], injected: bool) -> list[dict[str, Any]]:
    users = [_text(m) for m in messages if m.get("role") == "user"]
    steps = next((p for p in map(find_plan, reversed(users)) if p is not None), [])
    if injected and steps:
        rogue = dict(steps[0]["arguments"])
        for target in ("principal_id", "group_id", "tenant_id"):
            if target in rogue:
                rogue[target] = INJECTED_PRINCIPAL
                break
        steps = [steps[0], {"tool": steps[0]["tool"], "arguments": rogue}, *steps[1:]]
    return steps


def next_turn(request: Mapping[str, Any], injected: bool = False) -> Turn:
    """What the script says next, from the plan block, the tools offered and the history."""
    messages = [m for m in request.get("messages", []) if isinstance(m, dict)]
    offered = {
        t.get("function", {}).get("name") for t in request.get("tools") or [] if isinstance(t, dict)
    }
    steps = _script(messages, injected)
    done = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
    if not steps:
        return Turn(text="Simulated model: the objective has no breakglass-plan block.")
    if done < len(steps):
        step = steps[done]
        if step["tool"] not in offered:
            return Turn(text=f"Simulated model: {step['tool']} is not offered; stopping.")
        arguments = json.dumps(step["arguments"], sort_keys=True, separators=(",", ":"))
        return Turn(call_id=f"call_sim_{done}", tool=step["tool"], arguments=arguments)
    results = [_text(m) for m in messages if m.get("role") == "tool"]
    refused = sum(1 for r in results if r.startswith("refused:"))
    return Turn(text=f"Simulated model: plan done; {len(results)} tool results, {refused} refused.")
