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

Its parts: the workspace's state and the Web API methods
(:mod:`tests.integration.slack.fake_slack_workspace`) and the refusal rules
(:mod:`tests.integration.slack.fake_slack_rules`); this module is the server, the record of
every call, the faults on demand and what a test reads back.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

from tests.integration.slack.fake_slack_rules import Fault, Json
from tests.integration.slack.fake_slack_workspace import Workspace

_JSON_FIELDS = ("blocks", "view", "files", "attachments")


@dataclass
class Call:
    method: str
    params: Json
    token: str


@dataclass
class FakeSlack(Workspace):
    """The workspace served on loopback: every call recorded, faults answered on demand."""

    calls: list[Call] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # method → its faults
    # Every call with the bot token answers this (the token revoked, its user deactivated).
    token_refused: str | None = None
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    app_token: str = "xapp-test-only-not-a-real-token"
    socket_out: asyncio.Queue[Json] = field(default_factory=asyncio.Queue)
    socket_in: list[Json] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (method, error) answered
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (method, warning) answered
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

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

    # ------------------------------------------------------------ faults on demand

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

    def refuse_token(self, error: str | None) -> None:
        """Every call with the bot token answers ``error`` (``token_revoked``,
        ``account_inactive``, ``invalid_auth``); None: the token works again."""
        self.token_refused = error

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


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


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
