"""Typed commands, the Action.Submit fallback, the development switch, and what is logged."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from adapters.teams import TeamsBot
from bot.job_commands import chat_ports
from engine.job import KILLED, PENDING
from tests.integration.teams.conftest import (
    ALICE,
    APP_PASSWORD,
    BOB,
    MALLORY,
    TeamsEnv,
    connections,
    teams_config,
)
from tests.integration.teams.fakes import OUTBOUND_TOKEN, serve
from tests.integration.teams.flow import approval_message, requested


def last_text(env: TeamsEnv) -> str:
    return str(env.connector.calls[-1].body.get("text", ""))


async def test_help_for_anything_unknown(teams: TeamsEnv) -> None:
    status, _ = await teams.post(teams.message(MALLORY, "what can you do"))
    assert status == 202
    assert "request" in last_text(teams)
    assert "kill [job]" in last_text(teams)
    assert teams.connector.calls[-1].body["textFormat"] == "plain"


async def test_status_shows_this_channels_open_jobs(teams: TeamsEnv) -> None:
    await teams.post(teams.message(MALLORY, "status"))
    assert last_text(teams) == "No break-glass job is open in this channel."
    job, _ = await requested(teams)
    await teams.post(teams.message(MALLORY, "status"))
    card = teams.connector.calls[-1].card
    assert card is not None
    assert job.job_id in card["fallbackText"]


async def test_kill_by_name_or_the_only_open_job(teams: TeamsEnv) -> None:
    job, _ = await requested(teams)
    await teams.post(teams.message(MALLORY, "kill bg-nosuchjob00"))
    assert last_text(teams) == "There is no such job."
    assert (await teams.service.load(job.job_id)).state == PENDING
    status, _ = await teams.post(teams.message(MALLORY, "kill"))
    await teams.settle()
    assert status == 202
    assert (await teams.service.load(job.job_id)).state == KILLED
    texts = [str(c.body.get("text", "")) for c in teams.connector.calls]
    assert (
        f"Kill recorded for job {job.job_id}: the token is revoked and the rollback runs." in texts
    )


async def test_action_submit_fallback_takes_the_same_path(teams: TeamsEnv) -> None:
    """Old clients send Action.Submit: a message whose value is the button's data."""
    job, _ = await requested(teams)
    message_id, _ = approval_message(teams)
    data = {"verb": "approve", "job_id": job.job_id, "plan_hash": job.plan.plan_hash}
    submit = teams.activity("message", BOB, value=data, replyToId=message_id)
    status, _ = await teams.post(submit)
    await teams.settle()
    assert status == 202
    assert (await teams.service.load(job.job_id)).plan.approvers() == ["u-bob"]
    assert any("Done." in str(c.body.get("text", "")) for c in teams.connector.calls)


async def test_nothing_secret_is_logged(teams: TeamsEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await requested(teams)
    await teams.post(teams.message(ALICE, "status"), teams.openid.mint("http://127.0.0.1:9/"))
    text = caplog.text
    assert teams.sent
    assert APP_PASSWORD not in text
    assert OUTBOUND_TOKEN not in text
    assert not [token for token in teams.sent if token in text]
    assert not [token.split(".")[2] for token in teams.sent if token.split(".")[2] in text]


async def test_development_switch_is_loud_and_explicit(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    config = teams_config(teams.openid, dev_disable_auth=True, app_password=None)
    bot = TeamsBot(config, chat_ports(teams.service), connections=connections())
    teams.connector.require_token = False  # an emulator: the Bot Connector answers 401
    assert "INSECURE: Teams inbound authentication is DISABLED" in caplog.text
    app = web.Application()
    bot.mount(app)
    runner, url = await serve(app)
    try:
        async with teams.http.post(
            f"{url}/api/messages", json=teams.message(MALLORY, "help")
        ) as response:
            assert response.status == 202
    finally:
        await runner.cleanup()
    assert "request" in last_text(teams)
    assert teams.connector.calls[-1].authorization == ""  # anonymous out as well as in
