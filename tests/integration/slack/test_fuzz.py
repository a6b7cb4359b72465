"""Fuzzed Slack input inside a valid signature: any JSON type in any field of a click, a form
submission, an app mention or a slash command is answered 2xx/4xx, never a 500, and no
listener fails (nothing logged at ERROR, no traceback)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import strategies as st

from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import REQUEST, dm_of, open_form, request_job
from tests.integration.slack.support import ALICE, BOB, FORM, form_values
from tests.support.fuzzing import check_property, json_values, mutations, our_errors

EXAMPLES = 60


def command_form(env: Env) -> dict[str, str]:
    return dict(
        pair.split("=", 1) for pair in env.sender.command_body(ALICE, "status").decode().split("&")
    )


def as_form_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def test_fuzzed_slack_input_is_answered_never_500(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    job = await request_job(env)
    click = env.sender.click_payload(BOB, f"D{BOB}", dm_of(env, BOB), "breakglass.deny")
    view = await open_form(env)
    submit = env.sender.submit_payload(ALICE, view, form_values(**REQUEST))
    mention = json.loads(env.sender.mention_body(ALICE, "status", "Ev0FUZZ"))
    command = command_form(env)
    inputs = st.one_of(
        st.tuples(st.just("payload"), mutations(click)),
        st.tuples(st.just("payload"), mutations(submit)),
        st.tuples(st.just("payload"), json_values),
        st.tuples(st.just("event"), mutations(mention)),
        st.tuples(
            st.just("command"),
            st.builds(
                lambda key, value: command | {key: as_form_text(value)},
                st.sampled_from(sorted(command)),
                json_values,
            ),
        ),
    )

    async def check(drawn: tuple[str, Any]) -> None:
        caplog.clear()
        kind, value = drawn
        if kind == "payload":
            answer = await env.sender.send_payload(value)
        elif kind == "event":
            answer = await env.sender.send(json.dumps(value).encode(), "application/json")
        else:
            answer = await env.sender.send(urlencode(value).encode(), FORM)
        await env.settle()
        assert answer.status < 500, (kind, value, answer.status, answer.body[:300])
        assert b"Traceback" not in answer.body
        assert our_errors(caplog.records) == [], (kind, value)

    await check_property(inputs, check, examples=EXAMPLES)
    assert (await env.service.load(job.job_id)).job_id == job.job_id
