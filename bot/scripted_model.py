"""The scripted model: a SIMULATED, deterministic OpenAI-compatible upstream (no LLM).

It reads the ``breakglass-plan`` block of the objective (see :mod:`bot.agent_prompt`) and
the offered tools from each request, and answers with the plan's tool calls in order, one
per turn (the write, then the verification read), then a final text answer. Every answer
says it is simulated (model id and ``system_fingerprint``). ``stream: true`` is answered
with SSE chunks in OpenAI's delta format, tool-call deltas included.

``injected=True`` plays a prompt-injected model: right after the planned write it also
calls the write tool for :data:`INJECTED_PRINCIPAL`, which the gateway must refuse.

Usable in-process (it is a ``ModelUpstream``) and over HTTP (:meth:`ScriptedModel.app`).
It records what it received, so tests can check what reached the upstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.llm import UpstreamReply, format_event
from adapters.llm.sse import DONE
from bot.agent_prompt import find_plan
from engine.encoding import sha256_b64u

log = logging.getLogger("breakglass.scripted_model")
SCRIPTED_MODEL_ID = "breakglass-scripted-sim"
SCRIPTED_PROVIDER = "breakglass-sim"
FINGERPRINT = "simulated:breakglass-scripted-sim"
INJECTED_PRINCIPAL = "u-mallory-injected"
CHUNK_CHARS = 24  # tool arguments and text are streamed in pieces this long


@dataclass(frozen=True)
class Received:
    body: bytes
    authorization: str | None  # None in-process


@dataclass(frozen=True)
class Turn:
    """The script's next answer: a text, or one tool call (name and JSON arguments)."""

    text: str = ""
    call_id: str = ""
    tool: str = ""
    arguments: str = ""

    @property
    def is_call(self) -> bool:
        return bool(self.tool)


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _script(messages: Sequence[Mapping[str, Any]], injected: bool) -> list[dict[str, Any]]:
    users = [_text(m) for m in messages if m.get("role") == "user"]
    steps = next((p for p in map(find_plan, reversed(users)) if p is not None), [])
    if injected and steps:
        rogue = dict(steps[0]["arguments"])
        for target in ("principal_id", "group_id", "tenant_id"):
            if target in rogue:
                rogue[target] = INJECTED_PRINCIPAL
                break
        steps = [steps[0], {"tool": steps[0]["tool"], "arguments": rogue}, *steps[1:]]
    return steps


def next_turn(request: Mapping[str, Any], injected: bool = False) -> Turn:
    """What the script says next, from the plan block, the tools offered and the history."""
    messages = [m for m in request.get("messages", []) if isinstance(m, dict)]
    offered = {
        t.get("function", {}).get("name") for t in request.get("tools") or [] if isinstance(t, dict)
    }
    steps = _script(messages, injected)
    done = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
    if not steps:
        return Turn(text="Simulated model: the objective has no breakglass-plan block.")
    if done < len(steps):
        step = steps[done]
        if step["tool"] not in offered:
            return Turn(text=f"Simulated model: {step['tool']} is not offered; stopping.")
        arguments = json.dumps(step["arguments"], sort_keys=True, separators=(",", ":"))
        return Turn(call_id=f"call_sim_{done}", tool=step["tool"], arguments=arguments)
    results = [_text(m) for m in messages if m.get("role") == "tool"]
    refused = sum(1 for r in results if r.startswith("refused:"))
    return Turn(text=f"Simulated model: plan done; {len(results)} tool results, {refused} refused.")


class ScriptedModel:
    def __init__(self, *, injected: bool = False) -> None:
        self.injected = injected
        self.hold: asyncio.Event | None = None  # when set up, streams pause after one chunk
        self.received: list[Received] = []
        self.streams_started = 0
        self.streams_finished = 0
        self.streams_cut = 0
        log.warning("SIMULATED model %s in use: a script, not an LLM", SCRIPTED_MODEL_ID)

    # ------------------------------------------------------------------ answering

    def reply(self, body: bytes, authorization: str | None = None) -> UpstreamReply:
        self.received.append(Received(body, authorization))
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            error = {"error": {"message": "body is not a JSON object", "code": "bad_request"}}
            return UpstreamReply(400, "application/json", _once(json.dumps(error).encode()))
        turn = next_turn(request, self.injected)
        usage = _usage(body, turn)
        log.info("simulated model answers (%s)", "tool call" if turn.is_call else "text")
        if request.get("stream") is True:
            include = (request.get("stream_options") or {}).get("include_usage") is True
            chunks = _stream_chunks(_chunk_id(body), turn, usage if include else None)
            return UpstreamReply(200, "text/event-stream", self._stream(chunks))
        completion = _completion(_chunk_id(body), turn, usage)
        return UpstreamReply(200, "application/json", _once(json.dumps(completion).encode()))

    async def _stream(self, chunks: list[bytes]) -> AsyncGenerator[bytes, None]:
        self.streams_started += 1
        try:
            for index, chunk in enumerate(chunks):
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
        reply = self.reply(await request.read(), request.headers.get("Authorization"))
        if not reply.is_stream:
            body = b"".join([chunk async for chunk in reply.chunks])
            return web.Response(body=body, status=reply.status, content_type=reply.content_type)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async with aclosing(reply.chunks) as chunks:
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
        return response


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


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


def _stream_chunks(chunk_id: str, turn: Turn, usage: Mapping[str, int] | None) -> list[bytes]:
    base = _envelope(chunk_id, "chat.completion.chunk")
    events = [
        base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        for delta in _deltas(turn)
    ]
    finish = "tool_calls" if turn.is_call else "stop"
    events.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage is not None:
        events.append(base | {"choices": [], "usage": dict(usage)})
    return [*map(format_event, events), format_event(DONE)]
