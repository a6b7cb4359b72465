"""Socket Mode: the same Bolt app, reached over a WebSocket the bot opens (no inbound HTTP)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl

from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import ephemerals, request_job
from tests.integration.slack.support import DAVE
from tests.support.waiting import eventually


async def test_no_app_token_no_socket(env: Env) -> None:
    assert await env.slack.start_socket_mode() is False
    assert env.fake.of("apps.connections.open") == []


async def test_slash_command_over_socket_mode(env: Env) -> None:
    job = await request_job(env)
    env.slack.config = replace(env.slack.config, app_token=env.fake.app_token)
    assert await env.slack.start_socket_mode() is True
    form = dict(parse_qsl(env.sender.command_body(DAVE, "status").decode()))
    envelope = {
        "envelope_id": "env-1",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": form,
    }
    await env.fake.socket_out.put(envelope)
    await eventually(lambda: any(m.get("envelope_id") == "env-1" for m in env.fake.socket_in))
    await eventually(lambda: bool(ephemerals(env, DAVE)))
    await env.settle()
    assert job.job_id in ephemerals(env, DAVE)[0]
    await env.slack.close()
