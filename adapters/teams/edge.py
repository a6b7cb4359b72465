"""``POST /api/messages``: authenticate first, then hand the activity to the Agents SDK.

The token is checked before the body is read; the body is read with a size limit, parsed
strictly, and checked against the token (channel endorsement, service URL) before anything
routes it. Only then does the SDK's ``CloudAdapter`` see it, with our verified claims as its
identity (the adapter's outbound connector client is built from them).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pydantic
from aiohttp import web
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import Agent, ClaimsIdentity
from microsoft_agents.hosting.core.http import HttpResponse

from adapters.teams.config import TeamsConfig
from adapters.teams.inbound_auth import InboundAuth, InboundAuthError, KeysUnavailable
from adapters.teams.tenant import refusal_response, shown, tenant_problem, tenants_named
from engine.canonical import strict_loads
from engine.errors import InputError, TooLarge

log = logging.getLogger("breakglass.teams.edge")
ROUTE = "/api/messages"
MAX_BODY_BYTES = 256 * 1024


class _Inbound:
    """The request as the SDK's ``HttpRequestProtocol`` wants it, already verified."""

    method = "POST"

    def __init__(self, headers: Mapping[str, str], body: Any, identity: ClaimsIdentity) -> None:
        self.headers = headers
        self._body = body
        self._identity = identity

    async def json(self) -> Any:
        return self._body

    def get_claims_identity(self) -> ClaimsIdentity:
        return self._identity

    def get_path_param(self, name: str) -> str:
        raise KeyError(name)


class Edge:
    def __init__(
        self, config: TeamsConfig, auth: InboundAuth, adapter: CloudAdapter, agent: Agent
    ) -> None:
        self.config = config
        self.auth = auth
        self.adapter = adapter
        self.agent = agent
        self.refusals: Counter[str] = Counter()  # refused requests by reason (tests, metrics)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body, identity = await self._admit(request)
        except InboundAuthError as exc:
            log.warning("teams: refused inbound request (401): %s", exc.reason)
            self.refusals["UNAUTHORIZED"] += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        except KeysUnavailable as exc:
            log.error("teams: cannot authenticate inbound requests: %s", exc)
            return web.json_response({"error": "authentication unavailable"}, status=503)
        except InputError as exc:
            log.warning("teams: refused inbound request (400): %s", exc)
            self.refusals["BAD_REQUEST"] += 1
            return web.json_response({"error": "bad request"}, status=400)
        if problem := tenant_problem(self.config.tenant_id, body):
            return self._refuse_tenant(body, problem)
        try:
            result = await self.adapter.process_request(
                _Inbound(request.headers, body, identity), self.agent
            )
        except pydantic.ValidationError:
            # One line: the SDK's own ERROR with the sender's content is filtered (quiet_logs).
            log.warning("teams: refused inbound request (400): not an activity")
            self.refusals["BAD_REQUEST"] += 1
            return web.json_response({"error": "bad request"}, status=400)
        if result.status_code == NOT_IMPLEMENTED:  # an invoke nothing of ours handles
            log.warning("teams: refused inbound request (400): no handler for this activity")
            self.refusals["BAD_REQUEST"] += 1
            return web.json_response({"error": "bad request"}, status=400)
        return _response(result)

    def _refuse_tenant(self, body: Mapping[str, Any], problem: str) -> web.Response:
        tenants = ", ".join(dict.fromkeys(shown(t) for t in tenants_named(body))) or "none"
        kind = shown(body.get("type"))
        log.warning("teams: refused inbound %s (%s): tenant %s", kind, problem, tenants)
        self.refusals[problem] += 1
        return refusal_response(body)

    async def _admit(self, request: web.Request) -> tuple[dict[str, Any], ClaimsIdentity]:
        if self.config.dev_disable_auth:
            # Loudly logged at startup; anonymous claims make outbound calls anonymous too.
            return await _read_activity(request), ClaimsIdentity()
        verified = await self.auth.verify_header(request.headers.get("Authorization"))
        body = await _read_activity(request)
        self.auth.check_activity(verified, body)
        return body, ClaimsIdentity(dict(verified.claims), authentication_type="Bearer")


ENVELOPE = ("from", "recipient", "conversation")
NOT_IMPLEMENTED = 501


async def _read_activity(request: web.Request) -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise TooLarge("activity body is too large")
    raw = bytearray()
    while chunk := await request.content.read(64 * 1024):  # read(n) may return less than n
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise TooLarge("activity body is too large")
    body = strict_loads(bytes(raw), floats=True)
    if not isinstance(body, dict):
        raise InputError("an activity must be a JSON object")
    for part in ENVELOPE:  # the SDK needs these to route the turn and address its answer
        value = body.get(part)
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise InputError(f"an activity needs {part}.id")
    return body


def _response(result: HttpResponse) -> web.Response:
    if result.body is not None:
        return web.json_response(result.body, status=result.status_code, headers=result.headers)
    return web.Response(status=result.status_code, headers=result.headers)
