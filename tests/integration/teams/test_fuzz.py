"""Fuzzed Teams activities with a valid Bot Framework token: any JSON type in any field of a
card press or a message is answered 2xx/4xx, never a 500, and none of our code fails. (The
Agents SDK may log its own validation of a malformed activity at ERROR before our edge
answers 400: its logger, not ours.)"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from tests.integration.teams.conftest import BOB, TeamsEnv
from tests.integration.teams.flow import approval_message, requested
from tests.support.fuzzing import check_property, json_values, mutations, our_errors


async def test_fuzzed_teams_activities_are_answered_never_500(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = teams
    job, _ = await requested(env)
    message_id, _ = approval_message(env)
    data = {"verb": "deny", "job_id": job.job_id, "plan_hash": job.plan.plan_hash}
    press = env.invoke(BOB, "deny", data, message_id)
    message = env.message(BOB, "status")
    inputs = st.one_of(mutations(press), mutations(message), json_values)

    async def check(activity: Any) -> None:
        caplog.clear()
        status, body = await env.post(activity)
        await env.settle()
        assert status < 500, (activity, status, body)
        assert "Traceback" not in str(body)
        assert our_errors(caplog.records) == [], activity

    await check_property(inputs, check)
