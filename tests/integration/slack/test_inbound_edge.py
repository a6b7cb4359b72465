"""The edge before Bolt: a validly signed body that is not a Slack envelope is a 400 with one
log line and no traceback; Slack's own re-delivery of a request we already took is a 200 that
does nothing again (a replay without the retry header stays a 401)."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest

from tests.integration.slack import steps
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import BOB, CAROL, FORM, Json, signed_headers

EDGE = "breakglass.slack.edge"
JSON = "application/json"


def click(env: Env, **fields: object) -> Json:
    payload = env.sender.click_payload(BOB, f"D{BOB}", steps.dm_of(env, BOB), "breakglass.approve")
    return payload | fields


def submission(env: Env, **fields: object) -> Json:
    view = {"type": "modal", "callback_id": "breakglass.request", "id": "V1"}
    return env.sender.submit_payload(BOB, view, {}) | fields


def as_form(payload: str) -> bytes:
    return urlencode({"payload": payload}).encode()


def deep(levels: int, opening: str = "[", closing: str = "]") -> str:
    return opening * levels + closing * levels


# (body, content type) builders; each one made Bolt raise, before the fix, a 500.
MALFORMED = {
    "actions is text": lambda env: (as_form(json.dumps(click(env, actions="x"))), FORM),
    "actions is an object": lambda env: (as_form(json.dumps(click(env, actions={"a": 1}))), FORM),
    "actions is empty": lambda env: (as_form(json.dumps(click(env, actions=[]))), FORM),
    "action_id is a number": lambda env: (
        as_form(json.dumps(click(env, actions=[{"action_id": 7, "value": "v"}]))),
        FORM,
    ),
    "view is a list": lambda env: (as_form(json.dumps(submission(env, view=[]))), FORM),
    "team is a list": lambda env: (as_form(json.dumps(click(env, team=[1]))), FORM),
    "payload is a list": lambda env: (as_form("[1, 2]"), FORM),
    "payload nested 50,000 deep": lambda env: (as_form(deep(50_000)), FORM),
    "payload object nested 5,000 deep": lambda env: (
        as_form('{"a":' * 5000 + "1" + "}" * 5000),
        FORM,
    ),
    "event body nested 50,000 deep": lambda env: (
        ('{"type":"event_callback","event":' + deep(50_000) + "}").encode(),
        JSON,
    ),
    "event is text": lambda env: (
        json.dumps({"type": "event_callback", "team_id": "T0FAKE", "event": "x"}).encode(),
        JSON,
    ),
    "authorizations hold text": lambda env: (
        json.dumps({"type": "event_callback", "authorizations": ["x"], "event": {}}).encode(),
        JSON,
    ),
}


@pytest.mark.parametrize("name", MALFORMED)
async def test_a_signed_malformed_envelope_is_400_without_a_traceback(
    env: Env, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    job = await steps.request_job(env)
    calls, chain = len(env.fake.calls), len(await env.store.chain(job.job_id))
    caplog.clear()
    body, content_type = MALFORMED[name](env)
    answer = await env.sender.send(body, content_type)
    await env.settle()
    assert answer.status == 400
    assert len(env.fake.calls) == calls  # nothing answered, nothing posted
    assert len(await env.store.chain(job.job_id)) == chain
    assert (await env.service.load(job.job_id)).state == "pending_approval"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == [EDGE]  # one line, from the edge
    assert "malformed envelope" in warnings[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # and no traceback anywhere


async def test_a_same_second_retry_of_an_event_is_200_and_acts_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, EDGE)
    job = await steps.request_job(env)
    body = env.sender.mention_body(CAROL, f"kill {job.job_id}", event_id="Ev0SAME1")
    headers = {"Content-Type": JSON, **signed_headers(body)}  # one timestamp: one signature
    first = await env.sender.post(body, headers)
    retry = await env.sender.post(body, headers | {"X-Slack-Retry-Num": "1"})
    await env.settle()
    assert (first.status, retry.status) == (200, 200)
    assert (await env.service.load(job.job_id)).state == "killed"
    assert len(steps.ephemerals(env, CAROL)) == 1  # one reply: the retry did nothing
    assert any("re-delivery (retry 1)" in r.getMessage() for r in caplog.records)
