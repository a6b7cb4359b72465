"""Loopback fakes of what Teams talks to: the Bot Framework OpenID metadata and signing keys,
and the Bot Connector service (the activities' ``serviceUrl``) that records every call."""

from __future__ import annotations

import asyncio
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


@dataclass
class FakeConnector:
    """The Bot Connector REST API for one tenant: records calls, answers with new ids.

    ``faults`` are answered first, one per call (status, headers); ``stop()`` / ``restart()``
    make it unreachable and bring it back on the same port.
    """

    calls: list[Call] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    refused: int = 0  # calls answered with a fault
    gate: asyncio.Event | None = None  # when set up, calls wait for it (a slow Teams)
    url: str = ""
    _port: int = 0
    _runner: web.AppRunner | None = None
    _next_id: int = 0

    async def start(self) -> None:
        app = web.Application()
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

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if self.gate is not None:
            await self.gate.wait()
        if self.faults:
            status, headers = self.faults.pop(0)
            self.refused += 1
            return web.json_response(
                {"error": {"code": "Throttled"}}, status=status, headers=headers
            )
        self.calls.append(
            Call(request.method, request.path, request.headers.get("Authorization", ""), body)
        )
        self._next_id += 1
        return web.json_response({"id": f"msg-{self._next_id}"})

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
