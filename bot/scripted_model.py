"""The scripted model: a SIMULATED, deterministic OpenAI-compatible upstream (no LLM).

It reads the ``breakglass-plan`` block of the objective (see :mod:`bot.agent_prompt`) and
the offered tools from each request, and answers with the plan's tool calls in order, one
per turn (the write, then the verification read), then a final text answer. Every answer
says it is simulated (model id and ``system_fingerprint``). ``stream: true`` is answered
with SSE chunks in OpenAI's delta format, tool-call deltas included.

``injected=True`` plays a prompt-injected model: right after the planned write it also
calls the write tool for :data:`INJECTED_PRINCIPAL`, which the gateway must refuse.

As strict as the real thing where docs/model.md cites it: it refuses, with OpenAI's error
object (``message``, ``type``, ``param``, ``code``), a body that is not a JSON object,
``stream_options`` without ``stream: true``, a prompt above its context window
(``context_length_exceeded``) and, when it has an ``api_key``, a call without it
(``invalid_api_key``, 401, quoting the key it was given as OpenAI does). Tests can hold
its calls (:class:`Gate`) and make it answer the next calls with any documented
refusal (:class:`Canned`: 429 with ``Retry-After``, 500, 503, a non-JSON page...) and frame
its streams in any valid way (:class:`StreamShape`: keep-alive comments, CRLF or CR line
ends, ``data:`` without a space, multi-line data, an error event mid-stream, no
``[DONE]``, a connection that drops). By default it answers as OpenAI frames a stream.

Usable in-process (it is a ``ModelUpstream``) and over HTTP (:meth:`ScriptedModel.app`).
It records what it received, so tests can check what reached the upstream.

This module answers a call (the script's turn as OpenAI's completion or stream). The script
and ``INJECTED_PRINCIPAL`` are in :mod:`bot.scripted_turns`, ``Canned`` and the refusals in
:mod:`bot.scripted_refusals`, ``Gate`` and ``StreamShape`` in :mod:`bot.scripted_controls`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.llm import UpstreamReply
from adapters.llm.sse import DONE
from bot.scripted_controls import Gate, StreamShape
from bot.scripted_refusals import (
    Canned,
    context_length_exceeded,
    invalid_api_key,
    openai_error,
)
from bot.scripted_turns import Turn, next_turn
from engine.encoding import sha256_b64u
from engine.errors import ModelError

log = logging.getLogger("breakglass.scripted_model")
SCRIPTED_MODEL_ID = "breakglass-scripted-sim"
SCRIPTED_PROVIDER = "breakglass-sim"
FINGERPRINT = "simulated:breakglass-scripted-sim"
CHUNK_CHARS = 24  # tool arguments and text are streamed in pieces this long
CONTEXT_TOKENS = 128_000  # the simulated context window (prompt tokens, estimated)


@dataclass(frozen=True)
class Received:
    body: bytes
    authorization: str | None  # None in-process; "" over HTTP without the header


class ScriptedModel:
    def __init__(
        self,
        *,
        injected: bool = False,
        api_key: str | None = None,
        context_tokens: int = CONTEXT_TOKENS,
    ) -> None:
        self.injected = injected
        self.api_key = api_key  # when set, a call over HTTP must present it (Bearer or Key)
        self.context_tokens = context_tokens
        self.hold: asyncio.Event | None = None  # when set up, streams pause after one chunk
        self.gate: Gate | None = None  # when set up, each call waits there before its answer
        self.canned: list[Canned] = []  # the next calls get these, in order, as they are
        self.shape = StreamShape()  # how streams are framed
        self.received: list[Received] = []
        self.streams_started = 0
        self.streams_finished = 0
        self.streams_cut = 0
        log.warning("SIMULATED model %s in use: a script, not an LLM", SCRIPTED_MODEL_ID)

    # ------------------------------------------------------------------ answering

    def reply(self, body: bytes, authorization: str | None = None) -> UpstreamReply:
        self.received.append(Received(body, authorization))
        request = self._admitted(body, authorization)
        if isinstance(request, Canned):
            return _canned(request)
        turn = next_turn(request, self.injected)
        usage = _usage(body, turn)
        log.info("simulated model answers (%s)", "tool call" if turn.is_call else "text")
        if request.get("stream") is True:
            include = (request.get("stream_options") or {}).get("include_usage") is True
            chunks = _stream_chunks(_chunk_id(body), turn, usage if include else None, self.shape)
            return UpstreamReply(200, "text/event-stream", self._stream(chunks))
        completion = _completion(_chunk_id(body), turn, usage)
        return UpstreamReply(200, "application/json", _once(json.dumps(completion).encode()))

    def _admitted(self, body: bytes, authorization: str | None) -> dict[str, Any] | Canned:
        """The request the script answers, or the answer it gets instead: a canned one, or
        OpenAI's refusal."""
        if self.canned:
            return self.canned.pop(0)
        keys = (f"Bearer {self.api_key}", f"Key {self.api_key}")
        if self.api_key is not None and authorization is not None and authorization not in keys:
            return invalid_api_key(authorization.partition(" ")[2])  # quoting what it was given
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            request = None
        if not isinstance(request, dict):
            message = "We could not parse the JSON body of your request."
            return openai_error(400, message, "invalid_request_error")
        if "stream_options" in request and request.get("stream") is not True:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return openai_error(400, message, "invalid_request_error", None, "stream_options")
        tokens = len(body) // 4  # as _usage counts them
        if tokens > self.context_tokens:
            return context_length_exceeded(self.context_tokens, tokens)
        return request

    async def _stream(self, chunks: list[bytes]) -> AsyncGenerator[bytes, None]:
        self.streams_started += 1
        try:
            for index, chunk in enumerate(chunks):
                if index == self.shape.break_after:
                    if self.shape.break_mid_event:
                        yield chunk[: len(chunk) // 2]
                    raise ModelError("simulated: the upstream broke off")
                yield chunk
                if index == 0 and self.hold is not None:
                    await self.hold.wait()
        except (GeneratorExit, asyncio.CancelledError):
            self.streams_cut += 1
            raise
        self.streams_finished += 1

    # ------------------------------------------------------------- as an upstream

    @asynccontextmanager
    async def send(self, body: bytes) -> AsyncIterator[UpstreamReply]:
        if self.gate is not None:
            await self.gate.wait()
        reply = self.reply(body)
        async with aclosing(reply.chunks):
            yield reply

    async def close(self) -> None:
        return None

    # ---------------------------------------------------------------- over HTTP

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Over HTTP a call without the key presents "" (in-process: None, nothing to check).
        authorization = request.headers.get("Authorization", "")
        sent = await request.read()
        if self.gate is not None:
            await self.gate.wait()
        reply = self.reply(sent, authorization)
        headers = {**reply.headers, "Content-Type": reply.content_type}
        if not reply.is_stream:
            body = b"".join([chunk async for chunk in reply.chunks])
            return web.Response(body=body, status=reply.status, headers=headers)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        async with aclosing(reply.chunks) as chunks:
            try:
                async for chunk in chunks:
                    await response.write(chunk)
            except ModelError:  # the connection drops: no end of the chunked body
                assert request.transport is not None
                request.transport.close()
                return response
        await response.write_eof()
        return response


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


def _canned(answer: Canned) -> UpstreamReply:
    return UpstreamReply(answer.status, answer.content_type, _once(answer.body), answer.headers)


def _chunk_id(body: bytes) -> str:
    return "chatcmpl-sim-" + sha256_b64u(body)[:16]


def _usage(body: bytes, turn: Turn) -> dict[str, int]:
    prompt = len(body) // 4  # a rough, deterministic count: there is no tokenizer here
    completion = max(1, (len(turn.text) + len(turn.tool) + len(turn.arguments)) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _envelope(chunk_id: str, kind: str) -> dict[str, Any]:
    return {
        "id": chunk_id,
        "object": kind,
        "created": 0,  # deterministic: the script has no clock
        "model": SCRIPTED_MODEL_ID,
        "system_fingerprint": FINGERPRINT,
    }


def _completion(chunk_id: str, turn: Turn, usage: Mapping[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
    if turn.is_call:
        message["tool_calls"] = [_tool_call(turn, turn.arguments)]
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if turn.is_call else "stop",
        "logprobs": None,
    }
    return _envelope(chunk_id, "chat.completion") | {"choices": [choice], "usage": dict(usage)}


def _tool_call(turn: Turn, arguments: str) -> dict[str, Any]:
    return {
        "id": turn.call_id,
        "type": "function",
        "function": {"name": turn.tool, "arguments": arguments},
    }


def _pieces(text: str) -> list[str]:
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]


def _deltas(turn: Turn) -> list[dict[str, Any]]:
    if not turn.is_call:
        return [{"role": "assistant", "content": ""}, *({"content": p} for p in _pieces(turn.text))]
    first = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"index": 0} | _tool_call(turn, "")],
    }
    rest = [
        {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        for piece in _pieces(turn.arguments)
    ]
    return [first, *rest]


def _stream_chunks(
    chunk_id: str, turn: Turn, usage: Mapping[str, int] | None, shape: StreamShape
) -> list[bytes]:
    """The stream's chunks. Asked for usage (``stream_options.include_usage``), every chunk
    has ``usage: null`` but one more, before ``[DONE]``, with the counts and no choices."""
    base = _envelope(chunk_id, "chat.completion.chunk")
    if usage is not None:
        base["usage"] = None
    events = [
        base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        for delta in _deltas(turn)
    ]
    finish = "tool_calls" if turn.is_call else "stop"
    events.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage is not None:
        events.append(base | {"choices": [], "usage": dict(usage)})
    framed = [("", shape.json(event)) for event in events]
    if shape.error is not None:  # the answer fails after its first delta; the stream ends
        framed = [framed[0], ("error" if shape.error_event else "", shape.json(shape.error))]
    elif shape.done:
        framed.append(("", DONE))
    return shape.frame(framed)
