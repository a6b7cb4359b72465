"""The console API takes exact types: a wrong one is a 400 naming the field, an unknown job a
404, and nothing is created or changed; fuzzed input never gets a 500 or a traceback."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from tests.integration.console.conftest import Console, post, role_request
from tests.support.fuzzing import check_property, json_values, mutations, our_errors

BAD_FIELDS = [
    ("minutes", True),
    ("minutes", "1"),
    ("minutes", 1.5),
    ("minutes", None),
    ("minutes", 0),
    ("ticket", {"a": 1}),
    ("justification", ["x"]),
    ("principal", 7),
    ("template", "nope"),
    ("as", None),
    ("as", "<img src=x onerror=alert(1)>\n#999 forged line"),
    ("as", "slack:UBOB"),
    ("colour", "red"),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
async def test_a_wrongly_typed_request_field_is_named_and_creates_nothing(
    console: Console, field: str, value: Any
) -> None:
    session, url, runtime = console
    body = role_request() | {field: value}
    status, answer = await post(session, f"{url}/console/api/request", body)
    assert status == 400
    assert (answer["reason"], answer["field"]) == ("INVALID_INPUT", field)
    assert field in answer["detail"]
    assert await runtime.service.store.list_jobs() == []


async def test_a_kill_as_a_made_up_identity_is_refused_before_the_job(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    # A Kill needs no directory match, and its "by" is signed as given: a black-box run
    # killed a job "as" markup with a newline and a forged line of the verifier's report.
    session, url, runtime = console
    caplog.set_level(logging.INFO, logger="breakglass.console")
    _, made = await post(session, f"{url}/console/api/request", role_request())
    before = await runtime.service.store.load_job(made["job_id"])
    hostile = "<img src=x>\n#999 forged line"
    kill = {"as": hostile, "verb": "kill", "job_id": made["job_id"]}
    status, answer = await post(session, f"{url}/console/api/act", kill)
    assert (status, answer["reason"], answer["field"]) == (400, "INVALID_INPUT", "as")
    assert await runtime.service.store.load_job(made["job_id"]) == before
    refused = [r.getMessage() for r in caplog.records if r.name == "breakglass.console"]
    assert refused == [f"console input refused: {answer['detail']}"]


async def test_a_body_that_is_not_an_object_is_400(console: Console) -> None:
    session, url, _ = console
    for path in ("request", "act"):
        status, answer = await post(session, f"{url}/console/api/{path}", [1, 2])
        assert (status, answer["field"]) == (400, "body")


async def test_feed_cursor_must_be_a_number(console: Console) -> None:
    session, url, _ = console
    async with session.get(f"{url}/console/api/feed", params={"after": "abc"}) as response:
        assert response.status == 400
        assert (await response.json())["field"] == "after"
    async with session.get(f"{url}/console/api/feed", params={"after": "0"}) as response:
        assert response.status == 200


async def test_unknown_job_is_404_for_bundle_and_act(console: Console) -> None:
    session, url, runtime = console
    async with session.get(f"{url}/console/api/jobs/bg-0000000000/bundle") as response:
        assert response.status == 404
        assert (await response.json())["reason"] == "JOB_NOT_FOUND"
    act = {"as": "console:bob", "verb": "kill", "job_id": "bg-0000000000"}
    status, answer = await post(session, f"{url}/console/api/act", act)
    assert (status, answer["reason"]) == (404, "JOB_NOT_FOUND")
    assert "no job 'bg-0000000000'" in answer["detail"]
    assert await runtime.service.store.list_jobs() == []


async def test_fuzzed_console_input_is_answered_never_500(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    session, url, _ = console
    status, created = await post(session, f"{url}/console/api/request", role_request())
    assert status == 200
    act = {"as": "console:bob", "verb": "approve", "job_id": created["job_id"]}
    act["plan_hash"] = created["result"]["plan_hash"]
    inputs = st.one_of(
        st.tuples(st.just("request"), mutations(role_request())),
        st.tuples(st.just("act"), mutations(act)),
        st.tuples(st.just("request"), json_values),
        st.tuples(st.just("feed"), st.text(max_size=12)),
        st.tuples(st.just("bundle"), st.text(min_size=1, max_size=40)),
    )

    async def check(drawn: tuple[str, Any]) -> None:
        kind, value = drawn
        if kind in ("request", "act"):
            async with session.post(f"{url}/console/api/{kind}", json=value) as response:
                status, text = response.status, await response.text()
        else:
            path = "feed" if kind == "feed" else f"jobs/{quote(value, safe='')}/bundle"
            params = {"after": value} if kind == "feed" else None
            async with session.get(f"{url}/console/api/{path}", params=params) as response:
                status, text = response.status, await response.text()
        assert status < 500, (kind, value, status, text)
        assert "Traceback" not in text
        assert our_errors(caplog.records) == [], (kind, value)

    await check_property(inputs, check)
