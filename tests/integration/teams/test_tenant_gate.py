"""Activities from another Entra tenant, validly signed and naming the incident channel: the
single-tenant bot refuses each before anything acts on it (no form, no job, no approval, no
kill, no post), answers as Teams expects, and records the refusal once (log and counter)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.integration.teams.conftest import ALICE, BOB, CHANNEL, TEAMS_TENANT, TeamsEnv
from tests.integration.teams.flow import approval_message, form_data, open_form, requested
from tests.integration.teams.test_action_attacks import message_reply, unchanged

OTHER_TENANT = "deadbeef-0000-4000-8000-000000000bad"


def from_tenant(activity: dict[str, Any], where: str) -> dict[str, Any]:
    """The activity claiming another tenant in ``where`` (both places, or one), or naming
    none ("missing")."""
    if where in ("both", "channelData"):
        activity["channelData"]["tenant"]["id"] = OTHER_TENANT
    if where in ("both", "conversation"):
        activity["conversation"]["tenantId"] = OTHER_TENANT
    if where == "missing":
        activity["channelData"] = {"channel": {"id": CHANNEL}}
        del activity["conversation"]["tenantId"]
    return activity


WHERE = ["both", "channelData", "conversation"]


def refused_once(env: TeamsEnv, caplog: pytest.LogCaptureFixture, where: str) -> None:
    reason = "FOREIGN_TENANT"
    lines = [r for r in caplog.records if reason in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert lines[0].levelno == logging.WARNING
    assert lines[0].name == "breakglass.teams.edge"
    assert env.bot.refusals[reason] == 1


async def invoke_refused(teams: TeamsEnv, activity: dict[str, Any]) -> None:
    """The invoke is answered 200 with the refusal, as Teams expects of an invoke."""
    status, body = await teams.post(activity)
    await teams.settle()
    assert status == 200
    assert "one organisation only" in message_reply(body)


@pytest.mark.parametrize("where", WHERE)
async def test_typed_request_from_another_tenant_gets_nothing(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    status, body = await teams.post(from_tenant(teams.message(ALICE, "request"), where))
    await teams.settle()
    assert (status, body) == (202, None)
    assert teams.connector.calls == []  # no form, no answer into the other tenant
    refused_once(teams, caplog, where)


@pytest.mark.parametrize("where", WHERE)
async def test_form_submit_from_another_tenant_makes_no_job(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    form = await open_form(teams)
    calls = len(teams.connector.calls)
    submit = teams.invoke(ALICE, "request", form_data(), teams.connector.id_of(form))
    await invoke_refused(teams, from_tenant(submit, where))
    assert await teams.service.open_jobs() == []
    assert len(teams.connector.calls) == calls
    refused_once(teams, caplog, where)


@pytest.mark.parametrize("where", WHERE)
async def test_approval_from_another_tenant_is_not_counted(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    job, _ = await requested(teams)
    calls = len(teams.connector.calls)
    message_id, _ = approval_message(teams)
    data = {"verb": "approve", "job_id": job.job_id, "plan_hash": job.plan.plan_hash}
    await invoke_refused(teams, from_tenant(teams.invoke(BOB, "approve", data, message_id), where))
    await unchanged(teams, job, calls)
    refused_once(teams, caplog, where)


@pytest.mark.parametrize("where", WHERE)
async def test_kill_from_another_tenant_kills_nothing(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    job, status_id = await requested(teams)
    calls = len(teams.connector.calls)
    data = {"verb": "kill", "job_id": job.job_id}  # Kill works on a pending job too
    pressed = teams.invoke(BOB, "kill", data, status_id)
    status, _ = await teams.post(from_tenant(pressed, where))
    typed, _ = await teams.post(from_tenant(teams.message(BOB, f"kill {job.job_id}"), where))
    await teams.settle()
    assert (status, typed) == (200, 202)
    await unchanged(teams, job, calls)
    reason = "FOREIGN_TENANT"
    assert teams.bot.refusals[reason] == 2  # one each, logged once each
    assert len([r for r in caplog.records if reason in r.getMessage()]) == 2


async def test_our_tenant_in_another_case_is_ours(teams: TeamsEnv) -> None:
    """Tenant ids are GUIDs: Entra does not distinguish their case."""
    activity = teams.message(ALICE, "request")
    activity["channelData"]["tenant"]["id"] = TEAMS_TENANT.upper()
    status, _ = await teams.post(activity)
    assert status == 202
    assert teams.connector.calls[-1].card is not None  # the form
    assert not teams.bot.refusals


async def test_an_activity_naming_no_tenant_is_held_to_the_other_checks(teams: TeamsEnv) -> None:
    """Teams always names the tenant; another channel may not. Such an activity is not
    refused here: the channel allow-list and the identity mappings still apply."""
    status, _ = await teams.post(from_tenant(teams.message(ALICE, "request"), "missing"))
    await teams.settle()
    assert status == 202
    assert not teams.bot.refusals
