"""The inbound edge: ``POST /slack/events``, checked before Bolt routes anything.

Slack signs each request with HMAC-SHA256 over ``v0:<timestamp>:<body>`` (signing secret).
Here, in order: (1) the timestamp is digits and the signature ``v0=<64 hex>``; (2) the body is
UTF-8 (Bolt would fail with a 500 on anything else); (3) the timestamp is within 5 minutes;
(4) the signature matches; (5) the same signed request was not seen before (a captured
request replayed within the 5 minutes). Any failure is a 401, logged, and nothing happens;
except that Slack's own re-delivery of a request it thinks we missed (the same signed request
again, with ``X-Slack-Retry-Num``) is a 200 that does nothing again, since Slack counts any
other answer as a failed delivery. A signed body that is not a Slack envelope
(``envelope.check``: its shape, its JSON nesting) is a 400, logged, before Bolt reads it.
Then Bolt verifies again and dispatches (``to_bolt_request`` / ``to_aiohttp_response``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from adapters.slack import envelope
from engine.ports import ReplayGuard

log = logging.getLogger("breakglass.slack.edge")
PATH = "/slack/events"
MAX_AGE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
# Bolt reads the envelope (payload, team, authorizations…) assuming Slack's shapes; a signed
# body of another shape makes it raise one of these while building its request: a 400, not 500.
MALFORMED = (envelope.Malformed, ValueError, TypeError, AttributeError, KeyError, IndexError)
RETRY_HEADER = "X-Slack-Retry-Num"


class Refused(Exception):
    """An inbound request that fails a check; ``str`` says which (never the secret)."""


class Edge:
    def __init__(
        self,
        app: AsyncApp,
        signing_secret: str,
        store: ReplayGuard,
        clock: Callable[[], datetime],
    ) -> None:
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)  # Slack's own clock rule: wall time
        self.store = store
        self.clock = clock  # the service clock, for the replay record

    async def handle(self, request: web.Request) -> web.Response:
        try:
            signature = await self._check(request)
        except Refused as why:
            log.warning("refused Slack request from %s: %s", request.remote, why)
            return web.json_response({"error": "invalid request"}, status=401)
        if not await self.store.claim_key(f"slack:sig:{signature}", {}, self.clock()):
            return self._seen_before(request)
        try:
            envelope.check(await request.text(), request.headers.getall("Content-Type", []))
            bolt_request = await to_bolt_request(request)
        except MALFORMED as why:
            log.warning(
                "refused Slack request from %s: malformed envelope (%s)", request.remote, why
            )
            return web.json_response({"error": "malformed request"}, status=400)
        response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    def _seen_before(self, request: web.Request) -> web.Response:
        retry = request.headers.get(RETRY_HEADER, "")
        if retry:  # Slack's retry of what we already took: acknowledge, act once
            log.info(
                "Slack re-delivery (retry %s) of a request already received ignored", retry[:8]
            )
            return web.Response(status=200)
        log.warning("refused Slack request from %s: replayed", request.remote)
        return web.json_response({"error": "invalid request"}, status=401)

    async def _check(self, request: web.Request) -> str:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Refused("malformed timestamp")
        if not _SIGNATURE.fullmatch(signature):
            raise Refused("malformed signature")
        if (request.charset or "utf-8").lower() != "utf-8":
            raise Refused("body is not declared UTF-8")
        body = await request.read()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("body is not UTF-8") from None
        if abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
            raise Refused("stale timestamp (older than 5 minutes, or in the future)")
        if not self.verifier.is_valid(body, timestamp, signature):
            raise Refused("bad signature")
        return signature


def mount(app: web.Application, edge: Edge) -> None:
    app.router.add_post(PATH, edge.handle)
