"""The agent's chat completions client: OpenAI-style tool calling over HTTP to the model
proxy, with the job's CST in ``X-CST``.

A stream is read whole, by the SSE rules of :mod:`adapters.llm.sse` (the ones the proxy
receipts it by), and is an answer only when ``data: [DONE]`` closed it and it carried no error
event: a stream cut off or failed mid-answer raises ModelError, so the executor never acts
on part of an answer (a tool call whose arguments were cut, say)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from adapters.llm.sse import comments, summarize
from bot.model_proxy import CST_HEADER
from engine.errors import ModelError

RECEIPT_COMMENT = "receipt "  # the proxy's last comment: ": receipt <json>"
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True)
class ToolCallRequest:
    call_id: str
    name: str  # the function name as the model wrote it
    arguments: str  # JSON text as the model wrote it (it may be malformed)


@dataclass(frozen=True)
class ModelReply:
    message: Mapping[str, Any]  # the assistant message, as it goes back into the history
    tool_calls: tuple[ToolCallRequest, ...]
    receipt: Mapping[str, Any] | None  # the proxy's signed gateway receipt


@dataclass
class _Accumulator:
    """Rebuilds one assistant message from streamed deltas."""

    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)

    def add(self, chunk: Mapping[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.content.append(delta["content"])
            for part in delta.get("tool_calls") or []:
                entry = self.calls.setdefault(
                    int(part.get("index", 0)), {"id": "", "name": "", "arguments": ""}
                )
                function = part.get("function") or {}
                entry["id"] = part.get("id") or entry["id"]
                entry["name"] = function.get("name") or entry["name"]
                entry["arguments"] += function.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for _, c in sorted(self.calls.items())
        ]
        return _assistant("".join(self.content) or None, calls)


def _assistant(content: object, calls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def _reply(message: Mapping[str, Any], receipt: Any) -> ModelReply:
    calls = tuple(
        ToolCallRequest(
            str(c.get("id", "")),
            str(c.get("function", {}).get("name", "")),
            str(c.get("function", {}).get("arguments", "")),
        )
        for c in message.get("tool_calls") or []
    )
    return ModelReply(message, calls, receipt if isinstance(receipt, Mapping) else None)


class ProxyClient:
    def __init__(
        self, base_url: str, model: str, *, stream: bool = True, read_timeout: float = 120
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.stream = stream
        self._timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _body(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "stream": self.stream,
        }
        if tools:
            body["tools"] = list(tools)
        if self.stream:
            body["stream_options"] = {"include_usage": True}  # so the receipt counts tokens
        return body

    async def chat(
        self, token: str, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any]
    ) -> ModelReply:
        """One model turn. Raises ModelError when the proxy refuses, the call fails, or a
        stream ends without ``data: [DONE]`` or carries an error event."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {CST_HEADER: token}
        try:
            async with self._session.post(
                self.url, json=self._body(messages, tools), headers=headers
            ) as response:
                if response.status != 200:
                    raise ModelError(
                        f"the proxy answered {response.status} {await _code(response)}"
                    )
                if response.content_type == "text/event-stream":
                    return await _read_stream(response)
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, AttributeError) as exc:
            raise ModelError(f"model call failed: {type(exc).__name__}") from exc
        return _from_completion(answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _from_completion(answer: Any) -> ModelReply:
    try:
        message = answer["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        return _reply(_assistant(message.get("content"), calls), answer.get("_receipt_envelope"))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelError("the answer is not a chat completion") from exc


async def _code(response: aiohttp.ClientResponse) -> str:
    try:
        return str((await response.json()).get("error", {}).get("code", ""))
    except (aiohttp.ClientError, ValueError, AttributeError):
        return ""


async def _read_stream(response: aiohttp.ClientResponse) -> ModelReply:
    received = await response.read()
    summary = summarize(received)
    if summary.error:
        raise ModelError(f"the model stream failed mid-answer{_error_code(summary.answers)}")
    if not summary.done:
        raise ModelError("the model stream ended without data: [DONE]: the answer was cut off")
    accumulator = _Accumulator()
    for chunk in summary.answers:
        if not isinstance(chunk, Mapping):
            raise ModelError("a stream event is not a chat completion chunk")
        accumulator.add(chunk)
    return _reply(accumulator.message(), _receipt(received))


def _error_code(answers: Sequence[Any]) -> str:
    """' (<code>)' of the stream's error object, for the log; never its message, which may
    quote what was sent (a key, say)."""
    for answer in answers:
        error = answer.get("error") if isinstance(answer, Mapping) else None
        if not isinstance(error, Mapping):
            continue
        code = error.get("code") or error.get("type")
        if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
            return f" ({code})"
    return ""


def _receipt(received: bytes) -> Any:
    """The proxy's receipt: the last ``receipt`` comment (written after every upstream byte,
    so an upstream's comment of that name comes before it)."""
    found = [c[len(RECEIPT_COMMENT) :] for c in comments(received) if c.startswith(RECEIPT_COMMENT)]
    return json.loads(found[-1]) if found else None
