"""The chain ledger of one transition: the events it appends, the artifacts they witness,
and the tokens it issues or revokes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine import chain
from engine.cst import issue_token, revocation_record
from engine.did import Signer
from engine.encoding import sha256_b64u
from engine.job import (
    Job,
    Token,
    stamp,
)
from engine.lifecycle.commands import Ctx, Effect, Transition
from engine.ports import ChainRecord
from engine.receipts import (
    Binding,
    bind_and_sign,
    content_hash,
    witness_hash,
)
from engine.wpc import Policy


class Ledger:
    """Appends events (and the artifacts they witness) to a job's chain during a transition."""

    def __init__(self, job: Job, now: datetime) -> None:
        self.job = job
        self.now = now
        self.records: list[ChainRecord] = []

    def _event(self, event_type: str, payload_hash: str) -> dict[str, Any]:
        event = chain.make_event(
            run_id=self.job.job_id,
            seq=self.job.chain_length,
            event_type=event_type,
            payload_hash_b64u=payload_hash,
            prev_hash_b64u=self.job.chain_head,
            at=self.now,
        )
        self.job = self.job.but(
            chain_length=self.job.chain_length + 1, chain_head=event["event_hash_b64u"]
        )
        return event

    def add(self, event_type: str, payload_hash: str, envelope: Mapping[str, Any] | None) -> None:
        event = self._event(event_type, payload_hash)
        self.records.append(ChainRecord(self.job.job_id, len(self.records), event, envelope))

    def add_receipt(
        self,
        event_type: str,
        envelope_type: str,
        payload: Mapping[str, Any],
        binding: Binding,
        signer: Signer,
    ) -> dict[str, Any]:
        event = self._event(event_type, witness_hash(payload))
        envelope = bind_and_sign(
            envelope_type, payload, binding, event["event_hash_b64u"], signer, self.now
        )
        self.records.append(ChainRecord(self.job.job_id, len(self.records), event, envelope))
        return envelope

    def finish(
        self, effects: Sequence[Effect] = (), result: Mapping[str, Any] | None = None
    ) -> Transition:
        base = self.job.chain_length - len(self.records)
        numbered = tuple(
            ChainRecord(r.job_id, base + i, r.event, r.envelope) for i, r in enumerate(self.records)
        )
        return Transition(self.job, numbered, tuple(effects), result or {"state": self.job.state})


def binding_for(job: Job, token: Token | None = None) -> Binding:
    scope = str(token.claims["token_scope_hash_b64u"]) if token else None
    return Binding(
        run_id=job.job_id, policy_hash_b64u=job.plan.plan_hash, token_scope_hash_b64u=scope
    )


def next_receipt_id(job: Job, kind: str) -> str:
    return f"{kind}_{job.job_id}_{job.chain_length:06d}"


def mint(job: Job, policy: Policy, kind: str, window_end: datetime, seq: int, ctx: Ctx) -> Token:
    """A token whose jti and nonce derive from its chain position: unique per job, and a
    transition stays a pure function of its inputs."""
    seed = sha256_b64u(f"{job.job_id}|{kind}|{seq}".encode())
    issued = issue_token(
        policy,
        job_id=job.job_id,
        kind=kind,
        issuer=ctx.keys.issuer,
        agent_did=ctx.keys.agent.did,
        now=ctx.now,
        window_end=window_end,
        jti=f"cst_{seed[:22]}",
        nonce=seed[22:],
    )
    return Token(kind, dict(issued.claims))


def add_token(ledger: Ledger, token: Token) -> None:
    ledger.add(chain.TOKEN_ISSUED, content_hash(token.claims), None)
    ledger.job = ledger.job.but(tokens=(*ledger.job.tokens, token))


def issue(
    job: Job, ledger: Ledger, policy: Policy, kind: str, window_end: datetime, ctx: Ctx
) -> Token:
    token = mint(job, policy, kind, window_end, ledger.job.chain_length, ctx)
    add_token(ledger, token)
    return token


def revoke(ledger: Ledger, token: Token, reason: str, ctx: Ctx) -> None:
    record = revocation_record(token.claims, reason, ctx.keys.issuer, ctx.now)
    ledger.add(chain.REVOCATION, record["payload_hash_b64u"], record)
    revoked = Token(token.kind, token.claims, stamp(ctx.now))
    ledger.job = ledger.job.but(
        tokens=tuple(revoked if t.jti == token.jti else t for t in ledger.job.tokens)
    )
