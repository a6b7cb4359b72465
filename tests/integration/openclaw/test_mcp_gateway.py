"""The MCP gateway with the official MCP Python client: it shows exactly the job's WPC
tools and forwards every call to the tool gateway, which checks, receipts and refuses."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from adapters.openclaw.mcp_gateway import MCP_PATH, McpGateway
from adapters.openclaw.names import MCP_NAMES, check_table, mcp_name
from engine import catalog
from engine.job import ACTIVE, KILLED
from engine.receipts import content_hash
from engine.tools import ToolRole
from engine.wpc import Policy
from tests.integration.agent.conftest import AgentEnv, Options, approve, build
from tests.integration.agent.receipts import tool_receipts


@dataclass(frozen=True)
class Served:
    env: AgentEnv
    gateway: McpGateway
    secret: str
    planned: Mapping[str, Any]  # the approved write's arguments

    def args(self, **changes: Any) -> dict[str, Any]:
        return dict(self.planned) | changes

    async def call(self, tool: str, arguments: dict[str, Any], secret: str = "") -> str:
        """One tool call in a fresh MCP session: its text, prefixed "error: " if is_error."""
        async with session(self.gateway.url, secret or self.secret) as client:
            answer = await client.call_tool(tool, arguments)
        (content,) = answer.content
        assert isinstance(content, types.TextContent)
        return f"error: {content.text}" if answer.is_error else content.text


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    env = await build(tmp_path, Options(agent=False))
    await approve(env)  # no executor: the job is active and nothing has been called
    job = await env.service.load("job-a1")
    policy = Policy.from_payload(job.to_json()["plan"]["payload"])
    tools = policy.tools_with_role({ToolRole.WRITE, ToolRole.READ})
    gateway = McpGateway(env.gateway)
    await gateway.start()
    secret = gateway.bind("job-a1", env.agent_token(job), tools)
    yield Served(env, gateway, secret, policy.terms["action"]["arguments"])
    await gateway.close()
    await env.close()


@asynccontextmanager
async def session(url: str, secret: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {secret}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        yield client


def test_every_catalog_tool_has_one_distinct_mcp_safe_name() -> None:
    check_table()
    assert set(MCP_NAMES) == set(catalog.TOOLS)


async def test_lists_exactly_the_jobs_write_and_read_tools(
    served: Served,
) -> None:
    _env, gateway, secret = served.env, served.gateway, served.secret
    async with session(gateway.url, secret) as client:
        listed = await client.list_tools()
    assert [t.name for t in listed.tools] == [
        mcp_name(catalog.WRITE_ROLE),
        mcp_name(catalog.READ_ROLE),
    ]
    async with session(gateway.url, "not-a-bound-secret") as client:
        assert (await client.list_tools()).tools == []


async def test_a_call_is_forwarded_checked_and_receipted(served: Served) -> None:
    answer = await served.call(mcp_name(catalog.WRITE_ROLE), served.args())
    assert json.loads(answer)["status"] == "success"
    assert [c[0] for c in served.env.tenant.calls] == [catalog.WRITE_ROLE]
    (receipt,) = await tool_receipts(served.env, "job-a1")
    assert (receipt["tool_name"], receipt["result_status"]) == (catalog.WRITE_ROLE, "success")


async def test_an_unlisted_tool_is_refused_by_the_gateway_and_receipted(served: Served) -> None:
    rollback = await served.call(mcp_name(catalog.REMOVE_ROLE), served.args())
    shell = await served.call("exec", {"command": "id"})
    assert rollback.startswith("error: refused: ")
    assert shell == "error: refused: TOOL_DENIED"
    assert served.env.tenant.calls == []  # nothing ran
    receipts = await tool_receipts(served.env, "job-a1")
    assert [(r["tool_name"], r["result_status"]) for r in receipts] == [
        (catalog.REMOVE_ROLE, "error"),
        ("exec", "error"),
    ]


async def test_an_out_of_scope_target_is_refused_and_kills_the_job(served: Served) -> None:
    answer = await served.call(mcp_name(catalog.WRITE_ROLE), served.args(principal_id="u-mallory"))
    await served.env.settle()
    assert answer == "error: refused: TARGET_OUT_OF_SCOPE"
    job = await served.env.service.load("job-a1")
    assert (job.state, job.end_reason) == (KILLED, "unexpected_target_detected")
    assert catalog.WRITE_ROLE not in [c[0] for c in served.env.tenant.calls]


async def test_an_unknown_secret_reaches_no_job(served: Served) -> None:
    answer = await served.call(mcp_name(catalog.WRITE_ROLE), served.args(), secret="guessed")
    assert answer == "error: refused: JOB_UNKNOWN"
    assert served.env.tenant.calls == []
    assert await tool_receipts(served.env, "job-a1") == []


async def test_after_a_refresh_calls_carry_the_new_token(served: Served) -> None:
    served.gateway.refresh("job-a1", "not.a.token")  # what the next call will present
    answer = await served.call(mcp_name(catalog.WRITE_ROLE), served.args())
    assert answer == "error: refused: TOKEN_INVALID"
    assert served.env.tenant.calls == []
    (receipt,) = await tool_receipts(served.env, "job-a1")
    assert receipt["result_status"] == "error"


async def test_a_malformed_call_is_refused_receipted_and_never_run(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK refuses these before our handler runs; the gateway still receipts each as a
    refused call, and never runs one: the last is the planned write with a bad ``_meta``."""
    caplog.set_level(logging.INFO, logger="breakglass.openclaw.mcp")  # and no other line
    write = mcp_name(catalog.WRITE_ROLE)
    malformed: list[dict[str, Any]] = [
        {"name": write, "arguments": ["not", "an", "object"]},
        {"name": 5, "arguments": {}},
        {"name": write, "arguments": served.args(), "_meta": 5},
    ]
    headers = {"Authorization": f"Bearer {served.secret}", "Accept": "application/json"}
    async with httpx2.AsyncClient(headers=headers) as http:
        for n, params in enumerate(malformed):
            body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}
            answer = (await http.post(served.gateway.url, json=body)).json()
            assert answer["error"]["code"] == types.INVALID_PARAMS, answer
    assert served.env.tenant.calls == []  # nothing ran
    refused = content_hash({"refused": "CALL_MALFORMED"})
    receipts = await tool_receipts(served.env, "job-a1")
    assert [(r["tool_name"], r["result_hash_b64u"]) for r in receipts] == [
        (catalog.WRITE_ROLE, refused),
        ("(none)", refused),
        (catalog.WRITE_ROLE, refused),
    ]
    warned = [r.getMessage() for r in caplog.records if r.name == "breakglass.openclaw.mcp"]
    assert warned == ["MCP tools/call refused (-32602) on job job-a1"] * 3


def mcp_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "breakglass.openclaw.mcp"]


LIST = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
JSON = {"Accept": "application/json", "Content-Type": "application/json"}
# (HTTP method, path, headers, body, the status the SDK answers): each refused by the
# transport before any handler of ours runs. Bodies carry a marker the log must not show.
TRANSPORT_REFUSALS: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("POST", MCP_PATH, JSON, b"not json body-marker", 400),
    ("POST", MCP_PATH, JSON, b'{"body-marker": 1}', 400),  # JSON, not JSON-RPC
    ("POST", MCP_PATH, JSON | {"Content-Type": "text/plain"}, LIST, 400),
    ("POST", MCP_PATH, JSON | {"Accept": "text/html"}, LIST, 406),
    ("PUT", MCP_PATH, JSON, LIST, 405),
    ("DELETE", MCP_PATH, JSON, b"", 405),  # stateless: no session to end
    ("GET", MCP_PATH, {"Accept": "application/json"}, b"", 406),  # a stream needs SSE
    ("POST", "/elsewhere", JSON, LIST, 404),
    ("POST", MCP_PATH, JSON | {"Host": "evil.example"}, LIST, 421),  # DNS rebinding
    ("POST", MCP_PATH, JSON | {"MCP-Protocol-Version": "2099-01-01"}, LIST, 400),
]


@pytest.mark.parametrize("secret", ["bound", "guessed", ""])
async def test_each_transport_refusal_is_one_info_line_and_changes_nothing(
    served: Served, caplog: pytest.LogCaptureFixture, secret: str
) -> None:
    caplog.set_level(logging.INFO, logger="breakglass.openclaw.mcp")
    token = served.secret if secret == "bound" else secret
    where = "job job-a1" if secret == "bound" else "no bound job"
    before = len(await served.env.store.chain("job-a1"))
    base = served.gateway.url.removesuffix(MCP_PATH)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient() as http:
        for method, path, headers, body, status in TRANSPORT_REFUSALS:
            answer = await http.request(method, base + path, headers=auth | headers, content=body)
            assert answer.status_code == status, (method, path, headers, answer.text)
    expected = [
        f"MCP transport refused {method} {path}: HTTP {status} on {where}"
        for method, path, _headers, _body, status in TRANSPORT_REFUSALS
    ]
    lines = mcp_lines(caplog)
    assert [r.getMessage() for r in lines] == expected
    assert {r.levelno for r in lines} == {logging.INFO}
    assert [getattr(r, "job_id", None) for r in lines] == [
        "job-a1" if secret == "bound" else None
    ] * len(expected)
    logged = repr([vars(r) for r in lines])
    assert "body-marker" not in logged
    assert served.secret not in logged
    assert not token or token not in logged
    assert served.env.tenant.calls == []  # nothing ran
    assert await tool_receipts(served.env, "job-a1") == []  # nothing receipted
    assert len(await served.env.store.chain("job-a1")) == before
    assert (await served.env.service.load("job-a1")).state == ACTIVE


async def test_a_malformed_call_answered_4xx_is_receipted_and_logged_once(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """On the per-request (2026-07-28) protocol the SDK answers a call it refuses as
    malformed with HTTP 400: the gateway receipts and logs it, the transport line does not
    repeat it."""
    caplog.set_level(logging.INFO, logger="breakglass.openclaw.mcp")
    version = "2026-07-28"
    meta = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    write = mcp_name(catalog.WRITE_ROLE)
    params = {"name": write, "arguments": ["not", "an", "object"], "_meta": meta}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    headers = JSON | {
        "Authorization": f"Bearer {served.secret}",
        "MCP-Protocol-Version": version,
        "Mcp-Method": "tools/call",
        "Mcp-Name": write,
    }
    async with httpx2.AsyncClient(headers=headers) as http:
        answer = await http.post(served.gateway.url, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == types.INVALID_PARAMS
    assert served.env.tenant.calls == []
    (receipt,) = await tool_receipts(served.env, "job-a1")
    refused = content_hash({"refused": "CALL_MALFORMED"})
    assert (receipt["tool_name"], receipt["result_hash_b64u"]) == (catalog.WRITE_ROLE, refused)
    lines = [(r.levelno, r.getMessage()) for r in mcp_lines(caplog)]
    assert lines == [(logging.WARNING, "MCP tools/call refused (-32602) on job job-a1")]
