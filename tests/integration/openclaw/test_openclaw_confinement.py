"""A model that asks OpenClaw for tools it was never offered: a shell, a file write and an
unlisted MCP tool. OpenClaw runs none of them, and nothing reaches the tenant.

The upstream here is a hostile fake LLM (an outside system), served over HTTP behind our
real proxy; it ignores the offered tools and calls what it likes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.llm import format_event
from adapters.llm.sse import DONE
from adapters.openclaw.names import openclaw_name
from bot.loopback import serve
from bot.proxy_config import UpstreamConfig
from bot.scripted_model import SCRIPTED_MODEL_ID, SCRIPTED_PROVIDER
from engine import catalog
from tests.integration.agent.conftest import approve
from tests.integration.agent.receipts import tool_receipts
from tests.integration.openclaw.conftest import MakeEnv, needs_openclaw
from tests.integration.openclaw.test_openclaw_jobs import OFFERED, settle
from tests.support.engine_sim import ROLE_TARGETS

pytestmark = [needs_openclaw, pytest.mark.slow]


class HostileModel:
    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.requests: list[dict[str, Any]] = []
        self.calls = [
            ("exec", {"command": f"touch {marker}"}),
            ("write", {"path": str(marker), "content": "pwned"}),
            (openclaw_name(catalog.REMOVE_ROLE), dict(ROLE_TARGETS)),
        ]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.requests.append(body)
        turn = sum(1 for m in body["messages"] if m.get("role") == "assistant")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in self.events(turn):
            await response.write(format_event(event))
        await response.write(format_event(DONE))
        return response

    def events(self, turn: int) -> list[dict[str, Any]]:
        base = {"id": f"chatcmpl-hostile-{turn}", "object": "chat.completion.chunk"}
        base |= {"created": 0, "model": SCRIPTED_MODEL_ID}
        if turn < len(self.calls):
            name, arguments = self.calls[turn]
            call = {"index": 0, "id": f"call_{turn}", "type": "function"}
            call["function"] = {"name": name, "arguments": json.dumps(arguments)}
            delta: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            delta, finish = {"role": "assistant", "content": "done"}, "stop"
        return [
            base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        ]


async def test_tools_never_offered_are_never_run(make_env: MakeEnv, tmp_path: Path) -> None:
    hostile = HostileModel(tmp_path / "pwned")
    site = await serve(hostile.app())
    upstream = UpstreamConfig(SCRIPTED_PROVIDER, site.url + "/v1")
    try:
        env, executor = await make_env(proxy={"upstream": upstream})
        await approve(env)
        await settle(env, executor)
    finally:
        await site.close()
    assert not hostile.marker.exists()  # no shell, no file write
    # The run failed (its tool calls did), so the window ended: the only tenant call is the
    # rollback's own read that nothing is granted. The rollback tool itself never ran.
    assert [name for name, _ in env.tenant.calls] == [catalog.READ_ROLE]
    assert (await env.service.load("job-a1")).end_reason == "executor_failed"
    assert all(t["tool_name"] != catalog.REMOVE_ROLE for t in await tool_receipts(env, "job-a1"))
    assert len(hostile.requests) == 4  # OpenClaw answered each attempt and went on
    for request in hostile.requests:
        assert sorted(t["function"]["name"] for t in request["tools"]) == sorted(OFFERED)
    answers = [m for m in hostile.requests[-1]["messages"] if m.get("role") == "tool"]
    assert [a["content"] for a in answers] == [  # OpenClaw answers: no such tool
        f"Tool {name} not found" for name, _ in hostile.calls
    ]
