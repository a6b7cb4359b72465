"""Slack's side of the conversation: signed requests as Slack sends them to our endpoint.

Signatures are computed here from the signing secret (v0 HMAC-SHA256 over
``v0:<timestamp>:<body>``), exactly as Slack documents, independent of the SDKs.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.integration.slack.block_kit import view_problems

Json = dict[str, Any]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-only-not-a-real-token"
INCIDENT = "CINCIDENT42"
OTHER_CHANNEL = "CRANDOM0001"
TEAM = "T0FAKE"
ALICE, BOB, CAROL, DAVE, MALLORY = "UALICE", "UBOB", "UCAROL", "UDAVE", "UMALLORY"
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAVE: "dave", MALLORY: "mallory"}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, *, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    timestamp = int(time.time()) - age
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature(secret, timestamp, body),
    }


FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Json:
        doc: Json = json.loads(self.body) if self.body else {}
        return doc


@dataclass
class SlackSender:
    """Sends what Slack would send to ``url`` (our mounted ``/slack/events``)."""

    session: aiohttp.ClientSession
    url: str
    secret: str = SECRET
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    # Told of every trigger id this sender hands out (the fake Slack's ``issue_trigger``):
    # Slack accepts a trigger only for the 3 seconds after the interaction that carried it.
    on_trigger: Callable[[str], None] | None = None

    def _id(self, prefix: str) -> str:
        made = f"{prefix}{next(self._ids):06d}"
        if prefix == "trig." and self.on_trigger is not None:
            self.on_trigger(made)
        return made

    async def send(
        self, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> Answer:
        all_headers = {"Content-Type": content_type, **signed_headers(body, secret=self.secret)}
        all_headers |= dict(headers or {})
        return await self.post(body, all_headers)

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Exactly these bytes and headers (attack tests forge them)."""
        async with self.session.post(self.url, data=body, headers=dict(headers)) as response:
            return Answer(response.status, await response.read())

    def command_body(self, user: str, text: str, channel: str = INCIDENT) -> bytes:
        form = {
            "token": "legacy-unused",
            "team_id": TEAM,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "incident-42",
            "user_id": user,
            "user_name": NAMES.get(user, user.lower()),
            "command": "/breakglass",
            "text": text,
            "api_app_id": "A0BREAKGLASS",
            "response_url": "http://127.0.0.1:9/unused",
            "trigger_id": self._id("trig."),
        }
        return urlencode(form).encode()

    async def command(self, user: str, text: str, channel: str = INCIDENT) -> Answer:
        return await self.send(self.command_body(user, text, channel), FORM)

    def _interaction_payload(self, kind: str, user: str) -> Json:
        """What every interactivity payload carries: its type, the team, the user, a trigger."""
        return {
            "type": kind,
            "team": {"id": TEAM, "domain": "acme"},
            "user": self._user(user),
            "api_app_id": "A0BREAKGLASS",
            "trigger_id": self._id("trig."),
        }

    def _interaction(self, payload: object) -> bytes:
        return urlencode({"payload": json.dumps(payload)}).encode()

    def _user(self, user: str) -> Json:
        return {
            "id": user,
            "username": NAMES.get(user, user),
            "name": NAMES.get(user, user),
            "team_id": TEAM,
        }

    async def submit(self, user: str, view: Json, values: Json) -> Answer:
        """A view_submission of ``view`` (as views.open showed it) with ``values`` typed in.

        A view the bot answers with (``response_action`` ``update`` or ``push``) must be one
        Slack shows: Slack checks it as it checks views.open, and shows the person an error
        instead of a view it refuses."""
        answer = await self.send_payload(self.submit_payload(user, view, values))
        doc = answer.json() if answer.status == 200 and answer.body.startswith(b"{") else {}
        if doc.get("response_action") in ("update", "push"):
            problems = view_problems(doc.get("view"))
            assert not problems, f"Slack would refuse the answered view: {problems}"
        return answer

    def submit_payload(self, user: str, view: Json, values: Json) -> Json:
        submitted = dict(view) | {"state": {"values": values}}
        return self._interaction_payload("view_submission", user) | {"view": submitted}

    async def click(
        self, user: str, channel: str, message: Json, action_id: str, value: str | None = None
    ) -> Answer:
        """A block_actions click on the button ``action_id`` of ``message`` (as posted)."""
        return await self.send_payload(self.click_payload(user, channel, message, action_id, value))

    def click_payload(
        self, user: str, channel: str, message: Json, action_id: str, value: str | None = None
    ) -> Json:
        button = find_button(message, action_id)
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": "b1",
            "text": button.get("text", {}),
            "value": button.get("value") if value is None else value,
            "action_ts": f"{time.time():.6f}",
        }
        return self._interaction_payload("block_actions", user) | {
            "container": {
                "type": "message",
                "message_ts": message.get("ts", ""),
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "channel": {"id": channel, "name": "x"},
            "message": message,
            "response_url": "http://127.0.0.1:9/unused",
            "actions": [action],
        }

    async def send_payload(self, payload: object) -> Answer:
        """An interactivity request (``payload=<JSON>``), signed."""
        return await self.send(self._interaction(payload), FORM)

    def mention_body(self, user: str, text: str, event_id: str, channel: str = INCIDENT) -> bytes:
        payload = {
            "token": "legacy-unused",
            "team_id": TEAM,
            "api_app_id": "A0BREAKGLASS",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": user,
                "text": f"<@UBOT> {text}",
                "ts": f"{time.time():.6f}",
                "channel": channel,
                "event_ts": f"{time.time():.6f}",
            },
            "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
        }
        return json.dumps(payload).encode()


def find_button(message: Mapping[str, Any], action_id: str) -> Json:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no button {action_id} in the message")


def form_values(**typed: str) -> Json:
    """``view.state.values`` of the request modal as Slack reports it."""
    values: Json = {}
    for name, value in typed.items():
        if name == "template":
            values[name] = {name: {"type": "static_select", "selected_option": {"value": value}}}
        else:
            kind = "number_input" if name == "duration_minutes" else "plain_text_input"
            values[name] = {name: {"type": kind, "value": value}}
    return values
