"""The model proxy against what an OpenAI-compatible upstream may send (docs/model.md, "What
an upstream may send", cites the sources): every valid stream framing, an error mid-stream,
a stream that never says [DONE] or whose connection drops, usage reported or not, and the
documented refusals (429 with Retry-After, 400 context_length_exceeded, 401, 500, 503), a
page that is not JSON, answers too large or too deep. The scripted model plays the upstream
over HTTP; the tests are the client."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.llm.sse import events
from bot.loopback import serve
from bot.model_client import ProxyClient
from bot.model_proxy import CST_HEADER, RECEIPT_HEADER
from bot.proxy_config import UpstreamConfig
from bot.scripted_controls import StreamShape
from bot.scripted_model import SCRIPTED_PROVIDER
from bot.scripted_refusals import (
    Canned,
    context_length_exceeded,
    invalid_api_key,
    overloaded,
    rate_limited,
    server_error,
)
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import envelopes, model_receipts
from tests.integration.agent.test_proxy import chat, http, quiet, token

__all__ = ["http", "quiet"]  # fixtures shared with test_proxy

INCLUDE_USAGE = {"stream_options": {"include_usage": True}}


async def call(
    http: aiohttp.ClientSession, env: AgentEnv, body: dict[str, Any]
) -> tuple[int, Mapping[str, str], bytes]:
    headers = {CST_HEADER: await token(env)}
    async with http.post(env.proxy_url + "/chat/completions", json=body, headers=headers) as r:
        return r.status, r.headers, await r.read()


async def stream(http: aiohttp.ClientSession, env: AgentEnv, **extra: Any) -> bytes:
    status, headers, received = await call(http, env, chat(stream=True, **extra))
    assert (status, headers["Content-Type"]) == (200, "text/event-stream")
    return received


async def the_receipt(env: AgentEnv) -> Mapping[str, Any]:
    await env.settle()
    (receipt,) = await model_receipts(env, "job-a1")  # also: its hashes match the kept bytes
    return receipt


def receipt_lines(received: bytes) -> list[Any]:
    """The receipts a client finds: comment lines ': receipt <json>' of their own."""
    lines = re.split(r"\r\n|\r|\n", received.decode())
    prefix = ": receipt "
    return [json.loads(line[len(prefix) :]) for line in lines if line.startswith(prefix)]


async def client_saw_the_chained_receipt(env: AgentEnv, received: bytes) -> None:
    chained = await envelopes(env, "job-a1", "gateway_receipt")
    assert receipt_lines(received) == [chained[-1]]


async def kept_response(env: AgentEnv) -> bytes:
    (kept,) = await env.store.exchanges("job-a1")
    return kept.response_body


# ------------------------------------------------------------ valid stream framings


@pytest.mark.parametrize(
    "shape",
    [
        StreamShape(keepalive="OPENROUTER PROCESSING"),
        StreamShape(newline="\r\n"),
        StreamShape(newline="\r"),
        StreamShape(space=False),
        StreamShape(multiline=True),
        StreamShape(last_blank_line=False),
    ],
    ids=["keep-alive", "crlf", "cr", "no-space", "multi-line-data", "no-last-blank-line"],
)
async def test_every_valid_framing_is_passed_through_and_its_usage_receipted(
    quiet: AgentEnv, http: aiohttp.ClientSession, shape: StreamShape
) -> None:
    quiet.scripted.shape = shape
    received = await stream(http, quiet, **INCLUDE_USAGE)
    receipt = await the_receipt(quiet)
    kept = await kept_response(quiet)
    assert received.startswith(kept)  # every byte as it came, then the receipt
    await client_saw_the_chained_receipt(quiet, received)
    # The client dispatches the upstream's events and nothing else (the receipt is a comment).
    assert list(events(received)) == list(events(kept + b"\n\n"))
    assert receipt["tokens_input"] > 0
    assert receipt["tokens_output"] > 0
    assert receipt["metadata"]["usage_reported"] is True
    assert receipt["metadata"]["complete"] is True


async def test_the_executor_reads_a_stream_whose_last_event_lacks_its_blank_line(
    quiet: AgentEnv,
) -> None:
    quiet.scripted.shape = StreamShape(last_blank_line=False)
    client = ProxyClient(quiet.proxy_url, "breakglass-scripted-sim")
    try:
        reply = await client.chat(await token(quiet), chat()["messages"], [])
    finally:
        await client.close()
    assert reply.message["content"].startswith("Simulated model")
    assert reply.receipt == (await envelopes(quiet, "job-a1", "gateway_receipt"))[-1]


# ------------------------------------------------------------ streams cut or failed


async def test_a_stream_that_ends_without_done_is_receipted_incomplete(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    quiet.scripted.shape = StreamShape(done=False)  # the connection ends cleanly all the same
    received = await stream(http, quiet, **INCLUDE_USAGE)
    receipt = await the_receipt(quiet)
    assert (receipt["metadata"]["complete"], receipt["metadata"]["upstream_status"]) == (
        False,
        200,
    )
    assert receipt["metadata"]["usage_reported"] is True  # the usage chunk did come
    await client_saw_the_chained_receipt(quiet, received)


async def test_a_stream_whose_connection_drops_mid_line_still_gives_the_client_its_receipt(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    quiet.scripted.shape = StreamShape(break_after=2, break_mid_event=True)
    received = await stream(http, quiet, **INCLUDE_USAGE)
    receipt = await the_receipt(quiet)
    kept = await kept_response(quiet)
    assert not kept.endswith(b"\n")  # the upstream's last line was cut off
    assert received.startswith(kept)
    # The receipt is a comment line of its own, not the end of the upstream's cut line.
    await client_saw_the_chained_receipt(quiet, received)
    assert receipt["metadata"]["complete"] is False
    assert receipt["metadata"]["usage_reported"] is False  # cut before the usage chunk
    assert (receipt["tokens_input"], receipt["tokens_output"]) == (0, 0)
    assert "upstream broke off a call of job-a1" in caplog.text


@pytest.mark.parametrize("named", [False, True], ids=["data-error", "event-error"])
async def test_an_error_event_mid_stream_is_receipted_as_a_failed_answer(
    quiet: AgentEnv, http: aiohttp.ClientSession, named: bool
) -> None:
    error = {"error": {"message": "overloaded", "type": "server_error", "code": "server_error"}}
    quiet.scripted.shape = StreamShape(error=error, error_event=named)
    received = await stream(http, quiet, **INCLUDE_USAGE)
    receipt = await the_receipt(quiet)
    assert receipt["metadata"]["complete"] is False
    assert receipt["metadata"]["stream_error"] is True
    assert receipt["metadata"]["usage_reported"] is False
    assert b"overloaded" in received  # the client gets the error as the upstream sent it
    await client_saw_the_chained_receipt(quiet, received)


async def test_a_stream_not_asked_for_usage_is_receipted_with_its_usage_unreported(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    received = await stream(http, quiet)  # no stream_options: no usage chunk
    assert b'"usage"' not in received
    receipt = await the_receipt(quiet)
    assert (receipt["tokens_input"], receipt["tokens_output"]) == (0, 0)
    assert receipt["metadata"]["usage_reported"] is False
    assert receipt["metadata"]["complete"] is True


# ------------------------------------------------------------ documented refusals


async def test_a_429_passes_with_its_retry_after_and_rate_limit_headers(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    quiet.scripted.canned.append(rate_limited(retry_after_seconds=3, retry_after_ms=2500))
    status, headers, body = await call(http, quiet, chat(stream=True, **INCLUDE_USAGE))
    assert status == 429
    assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert (headers["Retry-After"], headers["retry-after-ms"]) == ("3", "2500")
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-request-id"] == "req_sim_rate_limited"
    assert headers[RECEIPT_HEADER].startswith("gr_job-a1_")
    receipt = await the_receipt(quiet)
    assert receipt["metadata"]["upstream_status"] == 429
    assert json.loads(body)["_receipt_envelope"]["payload"] == receipt


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (context_length_exceeded(8192, 9000), 400, "context_length_exceeded"),
        (invalid_api_key(), 401, "invalid_api_key"),
        (server_error(), 500, None),
        (overloaded(retry_after_seconds=7), 503, None),
    ],
    ids=["400-context", "401-upstream-key", "500", "503"],
)
async def test_an_upstream_error_passes_with_its_status_and_is_receipted(
    quiet: AgentEnv, http: aiohttp.ClientSession, answer: Canned, status: int, code: str | None
) -> None:
    quiet.scripted.canned.append(answer)
    got, headers, body = await call(http, quiet, chat())
    error = json.loads(body)["error"]
    assert (got, error["code"]) == (status, code)
    assert set(error) == {"message", "type", "param", "code"}  # OpenAI's error object
    if status == 503:
        assert headers["Retry-After"] == "7"
    receipt = await the_receipt(quiet)
    assert receipt["metadata"]["upstream_status"] == status
    assert receipt["metadata"]["complete"] is True  # the whole answer passed
    assert receipt["metadata"]["usage_reported"] is False


async def test_the_upstream_refusing_the_proxys_key_is_its_own_401(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    quiet.scripted.api_key = "sk-the-right-one"  # and the proxy is configured with none
    status, _, body = await call(http, quiet, chat())
    assert (status, json.loads(body)["error"]["code"]) == (401, "invalid_api_key")
    assert quiet.scripted.received[-1].authorization == ""
    assert (await the_receipt(quiet))["metadata"]["upstream_status"] == 401


async def test_a_page_that_is_not_json_passes_with_its_content_type(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    quiet.scripted.canned.append(Canned(502, page, "text/html", {"Retry-After": "5"}))
    status, headers, body = await call(http, quiet, chat())
    assert (status, body) == (502, page)
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Retry-After"] == "5"
    assert (await the_receipt(quiet))["metadata"]["upstream_status"] == 502


async def test_the_scripted_model_refuses_stream_options_without_a_stream(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    status, _, body = await call(http, quiet, chat(**INCLUDE_USAGE))
    error = json.loads(body)["error"]
    assert (status, error["param"]) == (400, "stream_options")
    assert error["type"] == "invalid_request_error"


async def test_the_scripted_model_refuses_a_prompt_beyond_its_context_window(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    quiet.scripted.context_tokens = 100
    status, _, body = await call(http, quiet, chat("x" * 1000))
    assert (status, json.loads(body)["error"]["code"]) == (400, "context_length_exceeded")


# ------------------------------------------------------------ too large, too deep, too big


async def test_an_answer_above_the_size_limit_is_cut_and_receipted_with_what_passed(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    limit = 64 * 1024
    env = await make_env(agent=False, proxy={"max_response_bytes": limit})
    await approve(env)
    huge = b'{"error": {"message": "' + b"x" * (4 * 1024 * 1024) + b'"}}'
    env.scripted.canned.append(Canned(500, huge))
    status, _, body = await call(http, env, chat())
    assert (status, json.loads(body)["error"]["code"]) == (502, "UPSTREAM_BROKE_OFF")
    receipt = await the_receipt(env)
    assert (receipt["metadata"]["complete"], receipt["metadata"]["upstream_status"]) == (
        False,
        500,
    )
    kept = await kept_response(env)
    assert limit < len(kept) < limit + 1024 * 1024  # read no further than the limit's chunk
    assert huge.startswith(kept)


async def test_an_answer_nested_too_deep_is_receipted_and_passed_on(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    deep = b'{"usage": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    quiet.scripted.canned.append(Canned(200, deep))
    status, _, body = await call(http, quiet, chat())
    assert (status, body) == (200, deep)  # not JSON to us: passed on as it came
    receipt = await the_receipt(quiet)
    assert receipt["metadata"]["usage_reported"] is False


async def test_token_counts_a_receipt_cannot_hold_are_unreported(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    usage = {"prompt_tokens": 10**30, "completion_tokens": 1}
    quiet.scripted.canned.append(Canned(200, json.dumps({"choices": [], "usage": usage}).encode()))
    status, _, body = await call(http, quiet, chat())
    assert status == 200
    receipt = await the_receipt(quiet)
    assert (receipt["tokens_input"], receipt["tokens_output"]) == (0, 0)
    assert receipt["metadata"]["usage_reported"] is False
    assert json.loads(body)["_receipt_envelope"]["payload"] == receipt


async def test_a_redirect_is_an_answer_and_the_body_goes_nowhere_else(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    elsewhere: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        elsewhere.append(await request.read())
        return web.json_response({"choices": []})

    other_app = web.Application()
    other_app.router.add_post("/v1/chat/completions", record)
    other = await serve(other_app)

    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPTemporaryRedirect(other.url + "/v1/chat/completions")

    redirecting_app = web.Application()
    redirecting_app.router.add_post("/v1/chat/completions", redirect)
    redirecting = await serve(redirecting_app)
    try:
        upstream = UpstreamConfig(SCRIPTED_PROVIDER, redirecting.url + "/v1", "sk-test")
        env = await make_env(agent=False, proxy={"upstream": upstream})
        await approve(env)
        status, _, _ = await call(http, env, chat())
    finally:
        await redirecting.close()
        await other.close()
    assert status == 307
    assert elsewhere == []  # the prompt went to the configured upstream only
    assert (await the_receipt(env))["metadata"]["upstream_status"] == 307


async def test_a_stream_cut_at_the_size_limit_ends_with_the_receipt_on_its_own_line(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    limit = 64 * 1024
    more = asyncio.Event()  # set once the client has the first, cut-off line

    async def upstream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"delta": {"content": "a')
        await more.wait()
        # The rest of that line and a whole event: above the limit, so never passed on.
        await response.write(b'"}}]}\n\n' + b": " + b"x" * limit + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream)
    site = await serve(app)
    try:
        env = await make_env(
            agent=False,
            proxy={
                "upstream": UpstreamConfig(SCRIPTED_PROVIDER, site.url + "/v1"),
                "max_response_bytes": limit,
            },
        )
        await approve(env)
        headers = {CST_HEADER: await token(env)}
        url = env.proxy_url + "/chat/completions"
        async with http.post(url, json=chat(stream=True), headers=headers) as r:
            first = await r.content.readuntil(b'"a')
            more.set()
            received = first + await r.content.read()
    finally:
        more.set()
        await site.close()
    assert b"xxxxxxxx" not in received  # what came past the limit was not passed on
    await client_saw_the_chained_receipt(env, received)
    receipt = await the_receipt(env)
    assert receipt["metadata"]["complete"] is False
