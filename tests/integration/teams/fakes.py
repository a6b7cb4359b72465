"""Loopback fakes of what Teams talks to: the Bot Framework OpenID metadata and signing keys,
and the Bot Connector service (the activities' ``serviceUrl``), which records every call and
refuses what the real one is documented to refuse (docs/teams.md §8)."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from adapters.teams.config import BOT_FRAMEWORK_ISSUER

APP_ID = "00000000-0000-4000-8000-00000000b07a"
OUTBOUND_TOKEN = "outbound-test-token-not-a-secret-elsewhere"


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    return runner, f"http://{host}:{bound}"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeOpenId:
    """OpenID metadata + JWKS like login.botframework.com's, on 127.0.0.1."""

    def __init__(self) -> None:
        self.key = rsa_key()
        self.kid = "bf-test-key-1"
        self.endorsements = ["msteams"]
        self.fetches = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metadata(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(
            {
                "issuer": BOT_FRAMEWORK_ISSUER,
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, _request: web.Request) -> web.Response:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk |= {"kid": self.kid, "use": "sig", "endorsements": self.endorsements}
        return web.json_response({"keys": [jwk]})

    def mint(
        self,
        service_url: str,
        *,
        aud: str = APP_ID,
        iss: str = BOT_FRAMEWORK_ISSUER,
        lifetime: int = 600,
        age: int = 10,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """A channel-service token as the Bot Framework issues them (RS256, with kid)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": iss,
            "aud": aud,
            "serviceurl": service_url,
            "nbf": now - age,
            "exp": now - age + lifetime,
            "jti": uuid.uuid4().hex,
        }
        for name in drop:
            claims.pop(name, None)
        headers = {"kid": kid or self.kid}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers=headers)


@dataclass
class Call:
    method: str
    path: str
    authorization: str
    body: dict[str, Any]

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return attachment["content"]  # type: ignore[no-any-return]
        return None

    @property
    def target(self) -> str:
        """The activity id in the path (the replied-to or updated message), or ''."""
        parts = self.path.rstrip("/").split("/activities")
        return parts[1].strip("/") if len(parts) > 1 else ""

    @property
    def size(self) -> int:
        """The payload as Teams counts it for its message size limit: UTF-16 bytes."""
        return utf16_size(self.body)


def utf16_size(body: Any) -> int:
    """Bytes Teams counts: "the entire message payload encoded as UTF-16" (Format your bot
    messages), here the JSON text as sent with non-ASCII characters unescaped."""
    return len(json.dumps(body, ensure_ascii=False).encode("utf-16-le"))


# Documented limits of the Bot Connector service for Teams (docs/teams.md §8 cites them).
MAX_MESSAGE_BYTES = 100 * 1024  # "Format your bot messages": 100 KB, UTF-16, whole payload
RECOMMENDED_MESSAGE_BYTES = 80 * 1024  # the same page: keep a message within 80 KB
# "Optimize your bot with rate limiting in Teams", per bot per thread, "Send to conversation":
# (seconds, most operations in any window of that length).
THREAD_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
# "Status codes from bot conversational APIs" (Build conversational capability): the error
# code each refusal carries in {"error": {"code": ..., "message": ...}}.
ERROR_CODES = {
    400: ("BadArgument", "Bad argument."),
    401: ("Unauthorized", "Unauthorized."),
    403: ("BotNotInConversationRoster", "The bot isn't part of the conversation roster."),
    404: ("ActivityNotFoundInConversation", "Conversation not found."),
    412: ("PreconditionFailed", "Precondition failed, please try again."),
    413: ("MessageSizeTooBig", "Message size too large."),
    429: ("Throttled", "Too many requests."),
    500: ("ServiceError", "Internal server error."),
    502: ("ServiceError", "Service dependency issue."),
    503: ("", "Service is unavailable."),
    504: ("", "Gateway Timeout."),
}


def error_body(status: int, code: str | None = None) -> dict[str, Any]:
    known, message = ERROR_CODES.get(status, ("", "Error."))
    return {"error": {"code": known if code is None else code, "message": message}}


def channel_of(conversation: str) -> str:
    """The channel a conversation id names (a thread's ``;messageid=`` suffix dropped)."""
    return conversation.split(";", 1)[0]


class FakeClock:
    """Seconds for the connector's rate windows. Moves only when the bot sleeps through it
    (``sleep``) or a test says so (``advance``): no test depends on the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


@dataclass
class Message:
    """An activity the conversation holds: where it is and whether the bot sent it."""

    channel: str
    by_bot: bool


@dataclass
class FakeConnector:
    """The Bot Connector REST API for one tenant, as strict as its documentation.

    It records every call it accepts and answers with new ids, and refuses what Teams refuses
    (docs/teams.md §8): a call without a bearer token (401); a reply to, or an update of, an
    activity the conversation does not hold (404 ``ActivityNotFoundInConversation``); a
    payload above ``max_message_bytes`` in UTF-16 (413 ``MessageSizeTooBig``); and more
    operations in one channel than the per bot per thread limits allow (429 ``Throttled``
    with ``Retry-After``), counted on ``clock``. Refused calls are not recorded and do not
    count against the limits.

    ``faults`` are answered first, one per call (status, headers), with the documented error
    body (``unavailable()`` queues an outage of so many calls); ``stop()`` / ``restart()``
    make it unreachable and bring it back on the same port.
    """

    calls: list[Call] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    refused: int = 0  # calls answered with an injected fault
    refusals: list[tuple[int, str]] = field(default_factory=list)  # what the rules refused
    asked: list[int] = field(default_factory=list)  # the Retry-After of each 429, in seconds
    gate: asyncio.Event | None = None  # when set up, calls wait for it (a slow Teams)
    clock: FakeClock = field(default_factory=FakeClock)
    limits: tuple[tuple[float, int], ...] = THREAD_LIMITS
    max_message_bytes: int = MAX_MESSAGE_BYTES
    require_token: bool = True  # False: the Bot Framework Emulator, which takes anonymous calls
    messages: dict[str, Message] = field(default_factory=dict)  # activity id -> where
    url: str = ""
    _port: int = 0
    _runner: web.AppRunner | None = None
    _next_id: int = 0
    _sent: dict[str, list[float]] = field(default_factory=dict)  # channel -> accepted at

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/v3/conversations/{tail:.*}", self._handle)
        self._runner, base = await serve(app, self._port)
        self._port = int(base.rsplit(":", 1)[1])
        self.url = base + "/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        await self.start()

    # --- what people do in the channel --------------------------------------------------------

    def heard(self, conversation: str, activity_id: str) -> None:
        """A person's message is in the conversation (and the thread it answers)."""
        channel = channel_of(conversation)
        self.messages.setdefault(activity_id, Message(channel, by_bot=False))
        _, _, root = conversation.partition(";messageid=")
        if root:
            self.messages.setdefault(root, Message(channel, by_bot=False))

    def spend(self, conversation: str, count: int) -> None:
        """The bot made ``count`` operations in the conversation's channel just now (other
        jobs' posts): they count against the per bot per thread limits."""
        self._sent.setdefault(channel_of(conversation), []).extend([self.clock()] * count)

    def unavailable(self, calls: int, status: int = 503, retry_after: str | None = None) -> None:
        """Teams is down for the next ``calls`` calls: each is answered ``status`` (503 "Service
        is unavailable"; 502 and 504 are the other transient answers) with the documented
        body, and ``Retry-After`` when given. Refused calls are not recorded."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.extend([(status, headers)] * calls)

    def delete(self, activity_id: str) -> None:
        """Someone (a team owner) deleted the message: Teams no longer holds it."""
        self.messages.pop(activity_id, None)

    # --- the REST API -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if self.gate is not None:
            await self.gate.wait()
        if self.faults:
            status, headers = self.faults.pop(0)
            self.refused += 1
            return web.json_response(error_body(status), status=status, headers=headers)
        call = Call(request.method, request.path, request.headers.get("Authorization", ""), body)
        conversation = request.match_info["tail"].split("/activities", 1)[0]
        channel = channel_of(conversation)
        refusal = self._refusal(call, channel)
        if refusal is not None:
            status, code, headers = refusal
            self.refusals.append((status, code))
            if "Retry-After" in headers:
                self.asked.append(int(headers["Retry-After"]))
            return web.json_response(error_body(status, code), status=status, headers=headers)
        self.calls.append(call)
        self._sent.setdefault(channel, []).append(self.clock())
        self._next_id += 1
        new_id = f"msg-{self._next_id}"
        if call.method == "PUT":  # Update Activity answers with the id of the updated activity
            return web.json_response({"id": call.target})
        self.messages[new_id] = Message(channel, by_bot=True)
        return web.json_response({"id": new_id})

    def _refusal(self, call: Call, channel: str) -> tuple[int, str, dict[str, str]] | None:
        token = call.authorization.removeprefix("Bearer ")
        if self.require_token and (token == call.authorization or not token):
            return 401, "Unauthorized", {}
        if call.target:
            held = self.messages.get(call.target)
            if held is None or held.channel != channel:
                return 404, "ActivityNotFoundInConversation", {}
            if call.method == "PUT" and not held.by_bot:
                return 403, "NotEnoughPermissions", {}
        if call.size > self.max_message_bytes:
            return 413, "MessageSizeTooBig", {}
        wait = self._throttled(channel)
        if wait is not None:
            return 429, "Throttled", {"Retry-After": str(max(1, math.ceil(wait)))}
        return None

    def _throttled(self, channel: str) -> float | None:
        """Seconds until one more operation in ``channel`` fits every window, or None."""
        now = self.clock()
        longest = max((window for window, _ in self.limits), default=0.0)
        sent = [at for at in self._sent.get(channel, []) if at > now - longest]
        self._sent[channel] = sent
        waits = []
        for window, most in self.limits:
            inside = [at for at in sent if at > now - window]
            if len(inside) >= most:
                waits.append(inside[-most] + window - now)
        return max(waits) if waits else None

    # what tests look at

    def id_of(self, call: Call) -> str:
        """The activity id the fake answered ``call`` with."""
        return f"msg-{self.calls.index(call) + 1}"

    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST"]

    def updates(self, activity_id: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == "PUT" and (activity_id in (None, c.target))]

    def cards(self) -> list[dict[str, Any]]:
        return [c.card for c in self.calls if c.card is not None]

    def titled(self, fragment: str) -> list[Call]:
        """Calls whose card's summary line mentions ``fragment``."""
        return [c for c in self.calls if c.card is not None and fragment in heading(c.card)]


def heading(card: dict[str, Any]) -> str:
    """The card's summary line (its ``fallbackText``): every card of ours has one."""
    return str(card.get("fallbackText", ""))


class StaticTokens:
    """An outbound token provider for the SDK's ConnectionManager (MSAL needs https)."""

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration
        self.requests = 0

    @property
    def configuration(self) -> Any:
        return self._configuration

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        self.requests += 1
        return OUTBOUND_TOKEN

    def get_token_credential(self) -> Any:
        raise NotImplementedError("not used by the Teams adapter")
