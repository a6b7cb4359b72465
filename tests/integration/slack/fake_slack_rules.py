"""The fake Slack's refusal rules: what it answers instead of doing what was asked. A
``Fault`` a test sets (Slack's error, an HTTP status, an error page, ``Retry-After``, in one
channel or everywhere, before or after the call took effect), and what Slack refuses in a
message body by itself (no text, malformed blocks, blocks too long; a ``text`` cut, with the
``message_truncated`` warning).

Apart from :mod:`tests.integration.slack.fake_slack` because these rules hold no state: they
turn a call's parameters into Slack's answer, and docs/slack.md §5 and §6 cite them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.integration.slack.block_kit import (
    BLOCKS_TEXT_LIMIT,
    MESSAGE_TEXT_LIMIT,
    block_problems,
    blocks_text,
)

Json = dict[str, Any]
TRIGGER_SECONDS = 3.0  # "pass a valid trigger_id within 3 seconds of receiving it"


@dataclass
class Fault:
    """What a method answers instead, ``times`` more times: Slack's ``error`` with ``status``
    (an empty ``error``: an HTML error page, as a proxy or Slack's edge sends), a
    ``Retry-After`` when set; in ``channel`` only when set. ``taken``: the call took effect
    first ("It's possible some aspect of the operation succeeded before the error was
    raised", ``fatal_error`` and ``internal_error`` on every method page)."""

    error: str
    times: int = 1
    status: int = 200
    retry_after: int | None = None
    channel: str | None = None
    taken: bool = False
    page_type: str = "text/html"  # of the error page; "application/json": mislabelled

    def applies(self, params: Json) -> bool:
        wanted = self.channel is None or self.channel in _channels_of(params)
        return self.times > 0 and wanted

    def answer(self) -> web.Response:
        self.times -= 1
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if not self.error:
            page = f"<html><body><h1>{self.status}</h1></body></html>"
            return web.Response(
                status=self.status, text=page, content_type=self.page_type, headers=headers
            )
        body = {"ok": False, "error": self.error}
        return web.json_response(body, status=self.status, headers=headers)


def _channels_of(params: Json) -> set[str]:
    return {str(params[k]) for k in ("channel", "channel_id") if params.get(k)}


def invalid(code: str, problems: list[str], listed: bool = True) -> Json:
    """Slack's refusal of malformed blocks or views: the code, each problem as a
    ``response_metadata`` message, and (for blocks) the ``errors`` list."""
    body: Json = {"ok": False, "error": code}
    if listed:
        body["errors"] = problems
    return body | {"response_metadata": {"messages": [f"[ERROR] {m}" for m in problems]}}


def refusal(p: Json) -> Json | None:
    """Why Slack refuses this message body (None: it takes it)."""
    blocks = p.get("blocks")
    if not p.get("text") and not blocks:
        return {"ok": False, "error": "no_text"}
    if blocks is None:
        return None
    problems = block_problems(blocks)
    if problems:
        return invalid("invalid_blocks", problems)
    if blocks_text(blocks) > BLOCKS_TEXT_LIMIT:
        return {"ok": False, "error": "msg_blocks_too_long"}
    return None


def truncated(p: Json) -> tuple[str, Json]:
    """The ``text`` as Slack keeps it, and the warning it answers when it cut it."""
    text = str(p.get("text") or "")
    if len(text) <= MESSAGE_TEXT_LIMIT:
        return text, {}
    said = (
        "[WARN] Your message was truncated but still posted. The `text` field accepts up to "
        "40,000 characters."
    )
    warned = {"response_metadata": {"warnings": ["message_truncated"], "messages": [said]}}
    return text[:MESSAGE_TEXT_LIMIT], warned
