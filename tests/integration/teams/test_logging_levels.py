"""What the log says about things a client or an outage causes: one WARNING line, no
traceback, nothing the sender wrote; ERROR stays for what an operator must act on."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.integration.teams import flow
from tests.integration.teams.conftest import MALLORY, TeamsEnv
from tests.integration.teams.test_delivery import card_update_refused

SENDER_TEXT = "Mallory-typed-words-4711"


def invalid_activities(env: TeamsEnv) -> dict[str, dict[str, Any]]:
    """Activities the SDK's model refuses, each carrying words of the sender."""
    text_list = env.message(MALLORY, "status")
    text_list["text"] = [SENDER_TEXT]
    type_int = env.message(MALLORY, SENDER_TEXT)
    type_int["type"] = 7
    no_type = env.message(MALLORY, SENDER_TEXT)
    del no_type["type"]
    return {"text: list": text_list, "type: int": type_int, "no type": no_type}


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at ERROR or with a traceback."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("case", ["text: list", "type: int", "no type"])
async def test_an_activity_the_sdk_refuses_is_one_quiet_line(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    status, body = await teams.post(invalid_activities(teams)[case])
    assert (status, body) == (400, {"error": "bad request"})
    assert not loud(caplog), caplog.text
    assert SENDER_TEXT not in caplog.text
    lines = [r for r in caplog.records if "refused inbound request" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert teams.bot.refusals["BAD_REQUEST"] == 1
    assert teams.connector.calls == []


async def test_an_outage_is_warnings_not_errors(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    job, _ = await flow.requested(teams)
    caplog.set_level(logging.DEBUG)
    teams.connector.faults = [(503, {})] * 20
    teams.advance(minutes=61)  # the request expires: cards, summary, bundle all fail
    await teams.service.tick()
    await teams.settle()
    assert teams.connector.refused >= 2
    assert not loud(caplog), caplog.text
    sdk = [r for r in caplog.records if "Error accessing" in r.getMessage()]
    assert sdk
    assert {r.levelno for r in sdk} == {logging.DEBUG}
    assert await teams.bot.deliver_queued(teams.clock.now()) == 0
    assert not loud(caplog), caplog.text
    assert (await teams.service.load(job.job_id)).state == "expired_unapproved"


async def test_refused_credentials_are_an_error(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    await card_update_refused(teams, 401)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["breakglass.teams.connector"]
    assert "credentials" in errors[0].getMessage()
    assert not errors[0].exc_info
