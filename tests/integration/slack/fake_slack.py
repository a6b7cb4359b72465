"""A fake Slack Web API on 127.0.0.1 (port 0) that records every call.

It answers in the documented shapes (``ok``, ``channel``, ``ts``, ``message``, ``error``) for
the methods breakglass uses, checks the bearer token, and knows which channels exist (the
incident channels it is given and the DMs ``conversations.open`` made), which messages were
posted (``chat.update`` of an unknown ts is ``message_not_found``) and which files were
uploaded (the files v2 flow: ``files.getUploadURLExternal`` → POST the bytes to the upload
URL → ``files.completeUploadExternal``). Faults on demand (docs/slack.md §5): any documented
error a set number of times (``fail``: 429 ``ratelimited`` with ``Retry-After``, 5xx
``service_unavailable``, ``fatal_error``/``internal_error`` after the call took effect or
before, ``request_timeout``, an error page that is not Slack's JSON), optionally in one channel
only (``chat.postMessage``'s limit is per channel); a channel archived or left by the bot
(``archive``, ``remove_bot``); the bot token revoked or its account deactivated
(``refuse_token``); slow answers, files refused, and the whole service down (its port closed).

As strict as Slack where Slack refuses (docs/slack.md §5): every message's blocks and every
modal are checked against the Block Kit limits (``block_kit``), answered ``invalid_blocks``
(with Slack's ``errors`` list) or ``invalid_arguments``; blocks whose text adds up beyond what
Slack takes are ``msg_blocks_too_long``; a ``text`` above 40,000 characters is cut, with the
``message_truncated`` warning. A ``trigger_id`` opens one modal, only within 3 seconds of the
interaction that carried it (the sender issues them: ``issue_trigger``), on ``clock``. A
message can be deleted as an admin or a retention policy would (``delete_message``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.integration.slack.block_kit import (
    BLOCKS_TEXT_LIMIT,
    MESSAGE_TEXT_LIMIT,
    VIEW_BYTES,
    block_problems,
    blocks_text,
    view_problems,
)

Json = dict[str, Any]
_JSON_FIELDS = ("blocks", "view", "files", "attachments")


@dataclass
class Call:
    method: str
    params: Json
    token: str


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    content: bytes | None = None
    channel: str | None = None
    thread_ts: str | None = None
    title: str = ""


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


@dataclass
class FakeSlack:
    token: str
    channels: set[str]
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], Json] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # method → its faults
    archived: set[str] = field(default_factory=set)  # channels an admin archived
    left: set[str] = field(default_factory=set)  # channels the bot was removed from
    # Every call with the bot token answers this (the token revoked, its user deactivated).
    token_refused: str | None = None
    files_allowed: bool = True
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    app_token: str = "xapp-test-only-not-a-real-token"
    socket_out: asyncio.Queue[Json] = field(default_factory=asyncio.Queue)
    socket_in: list[Json] = field(default_factory=list)
    team_id: str = "T0FAKE"
    # Seconds on the test's clock (the env sets its manual clock): trigger ids expire on it.
    clock: Callable[[], float] = field(default=lambda: 0.0)
    triggers: dict[str, float] = field(default_factory=dict)  # issued trigger id → when
    exchanged: set[str] = field(default_factory=set)  # trigger ids a modal was opened with
    deleted: set[tuple[str, str]] = field(default_factory=set)  # (channel, ts) deleted
    # The workspace's message editing setting: seconds after posting that an edit is taken
    # (chat.update answers ``edit_window_closed`` after); None, Slack's default, is any time.
    edit_window: float | None = None
    posted_at: dict[tuple[str, str], float] = field(default_factory=dict)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (method, error) answered
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (method, warning) answered
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _port: int = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._bind(0)

    async def _bind(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", port)
        await self._site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for event in self.held.values():
            event.set()  # let held answers go, so the server can close
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_down(self) -> None:
        """Slack unreachable: the port refuses connections."""
        assert self._site is not None
        await self._site.stop()
        self._site = None

    async def come_back(self) -> None:
        await self._bind(self._port)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    # ----------------------------------------------------------------- inspection

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[Json]:
        """Messages posted (in call order), optionally in one channel / thread."""
        out = []
        for call in self.of("chat.postMessage"):
            p = call.params
            if channel is not None and p.get("channel") != channel:
                continue
            if thread_ts is not None and p.get("thread_ts") != thread_ts:
                continue
            out.append(p)
        return out

    def thread(self, channel: str, ts: str) -> list[str]:
        """The texts of the replies Slack holds in the thread of ``ts``, oldest first (``posts``
        lists the calls, refused ones too)."""
        return [
            str(m.get("text", ""))
            for (ch, _), m in self.messages.items()
            if ch == channel and m.get("thread_ts") == ts
        ]

    def texts(self) -> str:
        """Everything the bot sent to people, as one string (for inertness checks)."""
        methods = ("chat.postMessage", "chat.update", "chat.postEphemeral")
        return "\n".join(json.dumps(c.params) for c in self.calls if c.method in methods)

    def rate_limit(
        self, method: str, times: int = 1, retry_after: int = 1, channel: str | None = None
    ) -> None:
        """429 ``ratelimited`` with ``Retry-After`` (rate limits page: "a HTTP 429 Too Many
        Requests error ... and a Retry-After header")."""
        self.fail(
            method, "ratelimited", times, status=429, retry_after=retry_after, channel=channel
        )

    def fail(
        self,
        method: str,
        error: str,
        times: int = 1,
        *,
        status: int = 200,
        retry_after: int | None = None,
        channel: str | None = None,
        taken: bool = False,
        page_type: str = "text/html",
    ) -> None:
        """``method`` answers ``error`` the next ``times`` times (see ``Fault``); faults
        given for one method answer in the order given."""
        fault = Fault(error, times, status, retry_after, channel, taken, page_type)
        self.faults.setdefault(method, []).append(fault)

    def archive(self, channel: str) -> None:
        """An admin archived ``channel``: posts answer ``is_archived``, updates ``is_inactive``
        ("The message cannot be edited within a frozen, archived or deleted channel")."""
        self.archived.add(channel)

    def remove_bot(self, channel: str) -> None:
        """Someone removed the bot from ``channel``: posts answer ``not_in_channel``."""
        self.left.add(channel)

    def invite_bot(self, channel: str) -> None:
        self.left.discard(channel)
        self.channels.add(channel)

    def refuse_token(self, error: str | None) -> None:
        """Every call with the bot token answers ``error`` (``token_revoked``,
        ``account_inactive``, ``invalid_auth``); None: the token works again."""
        self.token_refused = error

    def issue_trigger(self, trigger_id: str) -> None:
        """Slack sent ``trigger_id`` in an interaction now (SlackSender calls this)."""
        self.triggers[trigger_id] = self.clock()

    def delete_message(self, channel: str, ts: str) -> None:
        """The message is deleted (by an admin, or a retention policy). One with replies
        stays as a tombstone its thread hangs on; one without is gone, and so is its thread."""
        key = (channel, ts)
        replies = any(
            m.get("thread_ts") == ts for (ch, _), m in self.messages.items() if ch == channel
        )
        self.deleted.add(key)
        if replies:
            self.messages[key] = {"type": "message", "subtype": "tombstone", "ts": ts, "text": ""}
        else:
            self.messages.pop(key, None)

    def hold(self, method: str) -> asyncio.Event:
        """Calls of ``method`` wait (Slack being slow) until the returned event is set."""
        self.held[method] = asyncio.Event()
        return self.held[method]

    # ------------------------------------------------------------------- handlers

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(Call(method, params, token))
        if method in self.held:
            await self.held[method].wait()
        fault = next((f for f in self.faults.get(method, ()) if f.applies(params)), None)
        if fault is not None and not fault.taken:
            return self._fault(method, fault)
        wanted = self.app_token if method == "apps.connections.open" else self.token
        if token != wanted:
            return _error("invalid_auth" if token else "not_authed")
        if self.token_refused is not None and method != "apps.connections.open":
            return _error(self.token_refused)
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        body: Json = handler(params)
        if fault is not None:  # it took effect; the caller hears only the error
            return self._fault(method, fault)
        if body.get("ok") is False:
            self.refusals.append((method, str(body.get("error"))))
        for warning in body.get("response_metadata", {}).get("warnings", ()):
            self.warnings.append((method, str(warning)))
        return web.json_response(body)

    def _fault(self, method: str, fault: Fault) -> web.Response:
        self.refusals.append((method, fault.error or f"http_{fault.status}"))
        return fault.answer()

    def _refused_channel(self, channel: str, archived: str, left: str) -> Json | None:
        """Slack's answer for a channel the bot cannot use, by what happened to it."""
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.archived:
            return {"ok": False, "error": archived}
        if channel in self.left:
            return {"ok": False, "error": left}
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="not found")
        upload.content = await request.read()
        return web.Response(text=f"OK - {len(upload.content)}")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: hello, then each queued envelope; what the app sends back is kept."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})
        sender = asyncio.ensure_future(self._feed(ws))
        try:
            async for message in ws:
                if message.type == web.WSMsgType.TEXT:
                    self.socket_in.append(json.loads(message.data))
        finally:
            sender.cancel()
        return ws

    async def _feed(self, ws: web.WebSocketResponse) -> None:
        while True:
            await ws.send_json(await self.socket_out.get())

    # -------------------------------------------------------------------- methods

    def _apps_connections_open(self, p: Json) -> Json:
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}

    def _auth_test(self, p: Json) -> Json:
        return {"ok": True, "team_id": self.team_id, "user_id": "UBOT", "bot_id": "BBOT"}

    def _conversations_open(self, p: Json) -> Json:
        users = str(p.get("users", ""))
        if not users or "," in users:
            return {"ok": False, "error": "users_list_not_supplied"}
        channel = "D" + users
        self.channels.add(channel)
        return {"ok": True, "channel": {"id": channel}}

    def _next_ts(self) -> str:
        return f"1764061200.{next(self._ts):06d}"

    def _chat_postMessage(self, p: Json) -> Json:
        channel = str(p.get("channel", ""))
        refused = self._refused_channel(channel, "is_archived", "not_in_channel") or _refusal(p)
        if refused is not None:
            return refused
        thread = p.get("thread_ts")
        if thread is not None and (channel, thread) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = self._next_ts()
        text, warned = _truncated(p)
        message = {"type": "message", "text": text, "ts": ts, "bot_id": "BBOT"}
        message |= {k: p[k] for k in ("blocks", "thread_ts") if k in p}
        self.messages[(channel, ts)] = message
        self.posted_at[(channel, ts)] = self.clock()
        return {"ok": True, "channel": channel, "ts": ts, "message": message} | warned

    def _chat_update(self, p: Json) -> Json:
        key = (str(p.get("channel", "")), str(p.get("ts", "")))
        # What chat.update answers for a channel the bot left is not documented.
        gone = self._refused_channel(key[0], "is_inactive", "channel_not_found")
        if gone is not None:
            return gone
        if key not in self.messages or key in self.deleted:
            return {"ok": False, "error": "message_not_found"}
        window = self.edit_window
        if window is not None and self.clock() - self.posted_at.get(key, 0.0) > window:
            return {"ok": False, "error": "edit_window_closed"}
        refused = _refusal(p)
        if refused is not None:
            return refused
        text, warned = _truncated(p)
        message = self.messages[key] | {k: p[k] for k in ("blocks",) if k in p}
        message |= {"text": text} if "text" in p else {}
        self.messages[key] = message
        return {
            "ok": True,
            "channel": key[0],
            "ts": key[1],
            "text": message["text"],
            "message": message,
        } | warned

    def _chat_postEphemeral(self, p: Json) -> Json:
        gone = self._refused_channel(str(p.get("channel", "")), "is_archived", "not_in_channel")
        if gone is not None:
            return gone
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        refused = _refusal(p)
        if refused is not None:
            return refused
        return {"ok": True, "message_ts": self._next_ts()} | _truncated(p)[1]

    def _views_open(self, p: Json) -> Json:
        view = p.get("view")
        problems = view_problems(view)
        if problems:
            return _invalid("invalid_arguments", problems, listed=False)
        if len(json.dumps(view).encode()) > VIEW_BYTES:
            return {"ok": False, "error": "view_too_large"}
        trigger = str(p.get("trigger_id") or "")
        issued = self.triggers.get(trigger)
        if issued is None:
            return {"ok": False, "error": "invalid_trigger_id"}
        if trigger in self.exchanged:
            return {"ok": False, "error": "exchanged_trigger_id"}
        if self.clock() - issued > TRIGGER_SECONDS:
            return {"ok": False, "error": "expired_trigger_id"}
        self.exchanged.add(trigger)
        opened = dict(view or {}) | {"id": f"V{next(self._ts):08d}", "hash": "h1"}
        return {"ok": True, "view": opened}

    def _views_update(self, p: Json) -> Json:
        return {"ok": True, "view": dict(p.get("view") or {})}

    def _files_getUploadURLExternal(self, p: Json) -> Json:
        if not self.files_allowed:
            return {"ok": False, "error": "file_uploads_disabled"}
        try:
            length = int(p.get("length", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.uploads[file_id] = Upload(file_id, str(p.get("filename", "")), length)
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, p: Json) -> Json:
        channel = p.get("channel_id")
        if channel is not None and channel not in self.channels:
            return {"ok": False, "error": "invalid_channel"}  # "Channel could not be found"
        if channel in self.archived | self.left:
            # Which of its two channel errors it answers here is not documented.
            return {"ok": False, "error": "posting_to_channel_denied"}
        done = []
        for item in p.get("files") or []:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None or upload.content is None or len(upload.content) != upload.length:
                return {"ok": False, "error": "file_not_found"}
            upload.channel = p.get("channel_id")
            upload.thread_ts = p.get("thread_ts")
            upload.title = str(item.get("title") or upload.filename)
            done.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        if not done:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "files": done}


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


TRIGGER_SECONDS = 3.0  # "pass a valid trigger_id within 3 seconds of receiving it"


def _invalid(code: str, problems: list[str], listed: bool = True) -> Json:
    """Slack's refusal of malformed blocks or views: the code, each problem as a
    ``response_metadata`` message, and (for blocks) the ``errors`` list."""
    body: Json = {"ok": False, "error": code}
    if listed:
        body["errors"] = problems
    return body | {"response_metadata": {"messages": [f"[ERROR] {m}" for m in problems]}}


def _refusal(p: Json) -> Json | None:
    """Why Slack refuses this message body (None: it takes it)."""
    blocks = p.get("blocks")
    if not p.get("text") and not blocks:
        return {"ok": False, "error": "no_text"}
    if blocks is None:
        return None
    problems = block_problems(blocks)
    if problems:
        return _invalid("invalid_blocks", problems)
    if blocks_text(blocks) > BLOCKS_TEXT_LIMIT:
        return {"ok": False, "error": "msg_blocks_too_long"}
    return None


def _truncated(p: Json) -> tuple[str, Json]:
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


async def _params(request: web.Request) -> Json:
    """JSON bodies as they are; form bodies with their JSON-valued fields decoded."""
    params: Json = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        return params | (dict(body) if isinstance(body, dict) else {})
    form = await request.post()
    params |= {k: v for k, v in form.items() if isinstance(v, str)}
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            params[name] = json.loads(params[name])
    return params
