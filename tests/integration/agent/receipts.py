"""Reading a job's model receipts back and checking them against the kept bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.encoding import sha256_b64u
from engine.envelope import verify_envelope
from engine.receipts import GATEWAY_RECEIPT, TOOL_RECEIPT
from tests.integration.agent.conftest import AgentEnv
from tests.support.shared import assert_valid


async def envelopes(env: AgentEnv, job_id: str, kind: str) -> list[Mapping[str, Any]]:
    return [
        r.envelope
        for r in await env.store.chain(job_id)
        if r.envelope is not None and r.envelope["envelope_type"] == kind
    ]


async def nothing_forwarded(env: AgentEnv, job_id: str) -> None:
    """No model receipt and no kept bytes: the call never left the proxy."""
    assert await envelopes(env, job_id, "gateway_receipt") == []
    assert await env.store.exchanges(job_id) == []


async def model_receipts(env: AgentEnv, job_id: str) -> list[Mapping[str, Any]]:
    """Every gateway receipt of the job, verified with the gateway key and matched to the
    exact bodies kept in the store; returns their payloads in chain order."""
    kept = {ex.receipt_id: ex for ex in await env.store.exchanges(job_id)}
    payloads = []
    for envelope in await envelopes(env, job_id, GATEWAY_RECEIPT):
        assert_valid("gateway_receipt_envelope.v1.json", envelope)
        payload = verify_envelope(
            envelope,
            expected_types={GATEWAY_RECEIPT},
            allowed_signers={env.service.keys.gateway.did},
        ).payload
        exchange = kept[payload["receipt_id"]]
        assert sha256_b64u(exchange.request_body) == payload["request_hash_b64u"]
        assert sha256_b64u(exchange.response_body) == payload["response_hash_b64u"]
        payloads.append(payload)
    return payloads


async def tool_receipts(env: AgentEnv, job_id: str) -> list[Mapping[str, Any]]:
    return [e["payload"] for e in await envelopes(env, job_id, TOOL_RECEIPT)]
