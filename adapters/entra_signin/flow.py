"""The step-up flow: begin a sign-in for an approver's click, complete it on the callback.

``begin`` remembers, under a fresh ``state``, who clicked which plan with which nonce and
PKCE verifier, and returns the Entra authorization URL (``claims`` asking for the plan's
authentication context, ``max_age``, ``prompt=login``). ``complete`` takes the callback's
``state`` and ``code`` once: it exchanges the code, verifies the ID token and submits
``Approve`` with the evidence. Every failure is submitted as ``StepUpFailed`` on the job, so
the refusal is recorded; a second callback with a used ``state`` is ``STEP_UP_REPLAYED``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from adapters.entra_signin.config import CALLBACK_PATH, START_PATH, SignInConfig
from adapters.entra_signin.idtoken import (
    JwksKeys,
    SigningKeys,
    SignInRejected,
    evidence_of,
    verify_id_token,
)
from engine.chat_ports import JobCommands
from engine.errors import CommandRefused
from engine.job import Actor
from engine.lifecycle import Approve, StepUpFailed
from engine.lifecycle.approvals import check_plan
from engine.outcome import Outcome
from engine.ports import SignInStore
from engine.stepup import STEP_UP_FAILED, STEP_UP_REPLAYED, required
from engine.timeutil import iso_ms, parse_iso

MAX_PENDING = 10_000  # begun sign-ins kept at once; the oldest are dropped first


@dataclass(frozen=True)
class PendingSignIn:
    state: str
    nonce: str
    verifier: str
    job_id: str
    plan_hash: str
    actor: Actor
    started: datetime
    used: bool = False
    authorize_url: str = ""


class PendingSignIns(Protocol):
    """Where begun sign-ins wait for their callback (memory, or the store for replicas)."""

    async def put(self, pending: PendingSignIn) -> None: ...

    async def get(self, state: str) -> PendingSignIn | None: ...

    async def claim(self, state: str) -> bool:
        """Mark ``state`` used: True for exactly one caller."""
        ...


class MemoryPendingSignIns:
    """One process's begun sign-ins (tests, and a service without a store)."""

    def __init__(self) -> None:
        self._by_state: dict[str, PendingSignIn] = {}

    async def put(self, pending: PendingSignIn) -> None:
        self._by_state[pending.state] = pending
        while len(self._by_state) > MAX_PENDING:
            self._by_state.pop(next(iter(self._by_state)))

    async def get(self, state: str) -> PendingSignIn | None:
        return self._by_state.get(state)

    async def claim(self, state: str) -> bool:
        pending = self._by_state.get(state)
        if pending is None or pending.used:
            return False
        self._by_state[state] = replace(pending, used=True)
        return True


class StoredPendingSignIns:
    """Begun sign-ins in the store: the callback may reach any replica, and a replayed
    callback is refused whichever replica it reaches."""

    def __init__(self, store: SignInStore) -> None:
        self._store = store

    async def put(self, pending: PendingSignIn) -> None:
        document = {
            "nonce": pending.nonce,
            "verifier": pending.verifier,
            "job_id": pending.job_id,
            "plan_hash": pending.plan_hash,
            "actor": [pending.actor.chat_identity, pending.actor.principal, pending.actor.display],
            "started": iso_ms(pending.started),
            "authorize_url": pending.authorize_url,
        }
        await self._store.put_sign_in(pending.state, document, pending.started)

    async def get(self, state: str) -> PendingSignIn | None:
        found = await self._store.sign_in(state)
        if found is None:
            return None
        doc, used = found
        chat_identity, principal, display = doc["actor"]
        return PendingSignIn(
            state=state,
            nonce=doc["nonce"],
            verifier=doc["verifier"],
            job_id=doc["job_id"],
            plan_hash=doc["plan_hash"],
            actor=Actor(chat_identity, principal, display),
            started=parse_iso(doc["started"]),
            used=used,
            authorize_url=doc["authorize_url"],
        )

    async def claim(self, state: str) -> bool:
        return await self._store.claim_sign_in(state)


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class StepUpFlow:
    def __init__(
        self,
        config: SignInConfig,
        jobs: JobCommands,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime],
        *,
        pending: PendingSignIns | None = None,
        keys: SigningKeys | None = None,
    ) -> None:
        self.config = config
        self._jobs = jobs
        self._session = session
        self._clock = clock
        self._pending = pending or MemoryPendingSignIns()
        self._keys = keys or JwksKeys(config.jwks_url)

    async def begin(self, job_id: str, plan_hash: str, actor: Actor) -> str:
        """The sign-in URL for ``actor`` approving ``plan_hash``; CommandRefused when that
        plan is not the job's or needs no step-up."""
        if not self.config.redirect_uri:
            raise CommandRefused("STEP_UP_UNAVAILABLE", "the sign-in callback is not known yet")
        job = await self._jobs.peek(job_id)
        plan = job.extension if job.extension is not None else job.plan
        check_plan(job, plan, plan_hash, "the sign-in is for")
        terms = required(plan.payload)
        if terms is None:
            raise CommandRefused("STEP_UP_NOT_NEEDED", "this plan needs no step-up")
        pending = PendingSignIn(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            job_id=job_id,
            plan_hash=plan_hash,
            actor=actor,
            started=self._clock(),
        )
        url = self._authorize_url(pending, str(terms["acr"]), int(terms["max_age_seconds"]))
        await self._pending.put(replace(pending, authorize_url=url))
        return url

    def short_link(self, authorize_url: str) -> str:
        """A short link on our public listener that redirects to ``authorize_url`` (chat
        platforms cut long text; Entra's URL with PKCE and claims is long)."""
        state = parse_qs(urlsplit(authorize_url).query).get("state", [""])[0]
        base = self.config.redirect_uri.removesuffix(CALLBACK_PATH)
        return f"{base}{START_PATH}/{state}"

    async def authorize_url_for(self, state: str) -> str | None:
        """The authorization URL of a begun, not yet completed sign-in."""
        pending = await self._pending.get(state)
        if pending is None or pending.used or not pending.authorize_url:
            return None
        if self._clock() - pending.started > self.config.pending_ttl:
            return None
        return pending.authorize_url

    def _authorize_url(self, pending: PendingSignIn, acr: str, max_age: int) -> str:
        claims = {"id_token": {"acrs": {"essential": True, "value": acr}}}
        params = {
            "client_id": self.config.client_id,
            "response_type": "code",
            "response_mode": "query",
            "redirect_uri": self.config.redirect_uri,
            "scope": "openid profile",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": _challenge(pending.verifier),
            "code_challenge_method": "S256",
            "claims": json.dumps(claims, separators=(",", ":")),
            "max_age": str(max_age),
        }
        if self.config.prompt_login:
            params["prompt"] = "login"
        return f"{self.config.authorize_url}?{urlencode(params)}"

    async def complete(self, state: str, code: str, error: str = "") -> Outcome:
        """Finish the sign-in ``state`` once; the job's answer (approval or refusal)."""
        pending = await self._pending.get(state)
        if pending is None:
            return Outcome(False, "", reason=STEP_UP_FAILED, detail="unknown sign-in")
        if not await self._pending.claim(state):
            return await self._refuse(pending, STEP_UP_REPLAYED, "this sign-in was already used")
        if self._clock() - pending.started > self.config.pending_ttl:
            return await self._refuse(pending, STEP_UP_FAILED, "the sign-in took too long")
        if error or not code:
            return await self._refuse(pending, STEP_UP_FAILED, f"sign-in failed: {error[:80]}")
        try:
            token = await self._exchange(pending, code)
            claims = await verify_id_token(
                token,
                self._keys,
                issuer=self.config.expected_issuer,
                audience=self.config.client_id,
                tenant_id=self.config.tenant_id,
                nonce=pending.nonce,
                now=self._clock(),
            )
        except SignInRejected as err:
            return await self._refuse(pending, STEP_UP_FAILED, err.detail)
        evidence = evidence_of(token, claims, pending.plan_hash)
        approve = Approve(pending.actor, pending.plan_hash, step_up=evidence)
        return await self._jobs.command(pending.job_id, approve)

    async def _refuse(self, pending: PendingSignIn, reason: str, detail: str) -> Outcome:
        failed = StepUpFailed(pending.actor, pending.plan_hash, reason, detail)
        return await self._jobs.command(pending.job_id, failed)

    async def _exchange(self, pending: PendingSignIn, code: str) -> str:
        form = {
            "grant_type": "authorization_code",
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": pending.verifier,
            "scope": "openid profile",
        }
        try:
            async with self._session.post(self.config.token_url, data=form) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SignInRejected("the token endpoint could not be reached") from exc
        if response.status != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise SignInRejected(f"the code exchange was refused ({str(error)[:40]})")
        token = body.get("id_token")
        if not isinstance(token, str):
            raise SignInRejected("the token endpoint returned no ID token")
        return token
