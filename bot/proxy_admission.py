"""Admission of a model call: who is calling (the CST), for which job, under which WPC,
to which upstream and model, and the exact bytes that will be forwarded.

Order (fail closed, cheapest refusal first): (1) the token's signature, which makes its
``mission_id`` trustworthy (checked once per token string: ``SIGNED_TOKENS_KEPT``); (2) the
job and its published WPC, verified against the publisher key; (3) the full token check for
that job and policy with the proxy audience, revocation in memory and in the store, and
``model:invoke`` scope, on every call; (4) the body: strict JSON object with a model and
messages; (5) the route; (6) the WPC's model statements; (7) redaction and the forwarded
bytes; (8) revocation again, as the body may have taken long to come (a Kill meanwhile).
Does NOT contact the upstream; ``revoked`` is asked again while the upstream answers.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from adapters.httpbody import read_capped
from adapters.llm import ModelUpstream
from bot.ids import receipt_id as new_receipt_id
from bot.pinned_policies import PinnedPolicies
from bot.redaction import Redaction, redact
from bot.service import JobService
from engine.canonical import strict_loads
from engine.cst import PROXY_AUDIENCE, VerifiedToken, check_claims, parse_token
from engine.errors import (
    GatewayRefusal,
    InputError,
    InvalidToken,
    JobNotFound,
    VerificationError,
)
from engine.job import Job
from engine.wpc import Policy

MODEL_SCOPE = "model:invoke"
# Tokens whose signature this proxy has checked, kept with their claims (an agent presents
# the same CST on every call; a job has one or two). Only the signature and the decoding
# are kept: time, job, policy pin, scope, audience and revocation are checked on every call.
SIGNED_TOKENS_KEPT = 256


@dataclass(frozen=True)
class Route:
    upstream: ModelUpstream
    provider: str
    model: str  # the model name forwarded (and checked against the WPC)


@dataclass(frozen=True)
class Admitted:
    job_id: str
    scope_hash: str
    route: Route
    body: bytes  # exactly what is sent upstream and hashed
    stream: bool
    redaction: Redaction
    receipt_id: str
    at: datetime
    jti: str  # the token's, for the revocation checks while the call runs


@dataclass(frozen=True)
class Caller:
    job: Job
    policy: Policy
    token: VerifiedToken


class Admission:
    def __init__(
        self,
        service: JobService,
        secrets: Sequence[str],
        max_request_bytes: int,
        routes: Mapping[str, Route],
    ) -> None:
        self.service = service
        self.secrets = tuple(secrets)
        self.max_request_bytes = max_request_bytes
        self.routes = dict(routes)  # model-name prefix -> route ("" is the default)
        self._policies = PinnedPolicies()
        self._signed = functools.lru_cache(maxsize=SIGNED_TOKENS_KEPT)(_signed_claims)

    async def admit(self, token: str, body: AsyncIterable[bytes]) -> Admitted:
        return await self.admit_caller(await self.authenticate(token), body)

    async def admit_caller(self, caller: Caller, body: AsyncIterable[bytes]) -> Admitted:
        """Steps (4) to (8) for a caller ``authenticate`` admitted: the body is read only
        now, so the proxy can bound the calls in flight before any of it is buffered."""
        request = parse_request(await read_capped(body, self.max_request_bytes, "request body"))
        route = self.route(str(request["model"]))
        decision = caller.policy.allows_model(route.provider, route.model)
        if not decision.allowed:
            detail = f"{route.provider}:{route.model[:80]} ({decision.reason})"
            raise GatewayRefusal("MODEL_NOT_ALLOWED", detail)
        forwarded, redaction = redact(request | {"model": route.model}, self.secrets)
        # The body may have come slowly: a token revoked meanwhile sends nothing upstream.
        if await self.revoked(caller.job.job_id, caller.token.jti):
            raise InvalidToken("TOKEN_REVOKED", caller.token.jti)
        return Admitted(
            job_id=caller.job.job_id,
            scope_hash=caller.token.token_scope_hash_b64u,
            route=route,
            body=encode(forwarded),
            stream=request.get("stream") is True,
            redaction=redaction,
            receipt_id=new_receipt_id("gr", caller.job.job_id),
            at=self.service.clock(),
            jti=caller.token.jti,
        )

    async def revoked(self, job_id: str, jti: str, *, durable: bool = True) -> bool:
        """Is ``jti`` revoked now? The gateway's sources: what this process knows
        (``JobService.knows_revoked``) and, when ``durable``, the store."""
        if self.service.knows_revoked(await self.service.peek(job_id), jti):
            return True
        return durable and await self.service.store.is_revoked(jti)

    async def authenticate(self, token: str) -> Caller:
        issuers = frozenset({self.service.keys.issuer.did})
        claims = self._signed(token, issuers)  # signature checked: mission_id is the issuer's
        job_id = claims.get("mission_id")
        if not isinstance(job_id, str):
            raise InvalidToken("TOKEN_MALFORMED", "mission_id")
        # The durable view too (a jti revoked by another replica or by the CLI), asked
        # while the checks below run; its answer is awaited before anyone is admitted.
        durable = asyncio.ensure_future(self.service.store.is_revoked(str(claims.get("jti"))))
        try:
            caller = await self._verify(claims, job_id)
            if await durable:
                raise InvalidToken("TOKEN_REVOKED", caller.token.jti)
        finally:
            _settled(durable)
        if MODEL_SCOPE not in caller.token.scope:
            raise InvalidToken("TOKEN_INSUFFICIENT_SCOPE", MODEL_SCOPE)
        return caller

    async def _verify(self, claims: Mapping[str, Any], job_id: str) -> Caller:
        """The full token check against the job as this process last saw it: a job moved by
        another replica revokes its tokens in the store, which ``authenticate`` asks."""
        try:
            job = await self.service.peek(job_id)
        except JobNotFound as exc:
            raise InvalidToken("TOKEN_WRONG_JOB", "no such job") from exc
        policy = self._policy(job)
        verified = check_claims(
            claims,
            now=self.service.clock(),
            job_id=job_id,
            policy_hash_b64u=policy.policy_hash_b64u,
            is_revoked=self.service.revoked.__contains__,
            audience=PROXY_AUDIENCE,
        )
        return Caller(job, policy, verified)

    def _policy(self, job: Job) -> Policy:
        try:
            return self._policies.of(job, self.service.keys.publisher.did, InvalidToken)
        except VerificationError as exc:
            raise InvalidToken("POLICY_INVALID", exc.code) from exc

    def route(self, model: str) -> Route:
        """The longest configured prefix wins; the prefix is stripped from the model."""
        for prefix in sorted(self.routes, key=len, reverse=True):
            if model.startswith(prefix) and len(model) > len(prefix):
                base = self.routes[prefix]
                return Route(base.upstream, base.provider, model[len(prefix) :])
        raise InputError("model is empty")


def _signed_claims(token: str, issuers: frozenset[str]) -> Mapping[str, Any]:
    """The claims of a token whose signature verifies, read-only (they are shared by every
    call that presents it). A refused token raises, so it is never kept."""
    return MappingProxyType(parse_token(token, issuers))


def _settled(lookup: asyncio.Future[bool]) -> None:
    """A lookup nobody waits for any more (a refusal came first): cancelled, or its
    error retrieved so that it is not reported as lost."""
    if not lookup.done():
        lookup.cancel()
    elif not lookup.cancelled():
        lookup.exception()


def parse_request(raw: bytes) -> dict[str, Any]:
    """A chat completions request: a strict JSON object with a model and messages."""
    request = strict_loads(raw, floats=True)  # temperature and top_p are floats
    if not isinstance(request, dict):
        raise InputError("the body is not a JSON object")
    if not isinstance(request.get("model"), str) or not request["model"]:
        raise InputError("model is required")
    if not isinstance(request.get("messages"), list) or not request["messages"]:
        raise InputError("messages are required")
    if "stream" in request and not isinstance(request["stream"], bool):
        raise InputError("stream must be true or false")
    return request


def encode(request: Mapping[str, Any]) -> bytes:
    """The forwarded bytes: compact UTF-8 JSON (hashed and stored exactly as sent)."""
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
