"""The pinned-WPC cache the tool gateway and the model proxy share."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.pinned_policies import PinnedPolicies
from engine.did import Signer
from engine.errors import GatewayRefusal, InvalidToken, VerificationError
from engine.job import Actor, Job, Plan
from engine.wpc import ModelAllowance, PlanRequest, build_wpc, sign_wpc

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PUBLISHER = Signer.from_seed(b"p" * 32)
STRANGER = Signer.from_seed(b"s" * 32)
REQUEST = PlanRequest(
    template="entra-role",
    targets={"tenant_id": "t-1", "principal_id": "u-alice", "role_definition_id": "r-ga"},
    minutes=30,
    requester="u-alice",
    justification="INC-7 outage: need GA to reset MFA",
    ticket="INC-7",
    job_id="job-1",
)


def _envelope(signer: Signer) -> dict[str, Any]:
    payload = build_wpc(REQUEST, signer.did, model=ModelAllowance("scripted", "runbook"))
    return sign_wpc(payload, signer, NOW)


def _job(envelope: Mapping[str, Any] | None) -> Job:
    payload = envelope["payload"] if envelope is not None else {}
    return Job(
        job_id="job-1",
        state="active",
        created_at="2026-11-25T12:00:00.000Z",
        expires_at="2026-11-25T13:00:00.000Z",
        requester=Actor("console:alice", "u-alice"),
        request={},
        channel={},
        plan=Plan(0, payload, "plan-hash", 30),
        policy_envelope=envelope,
    )


def test_a_policy_is_verified_once_and_then_served_from_the_cache() -> None:
    policies = PinnedPolicies()
    envelope = _envelope(PUBLISHER)
    first = policies.of(_job(envelope), PUBLISHER.did, GatewayRefusal)
    again = policies.of(_job(dict(envelope)), PUBLISHER.did, GatewayRefusal)
    assert again is first
    assert first.policy_hash_b64u == envelope["payload_hash_b64u"]


@pytest.mark.parametrize("refusal", [GatewayRefusal, InvalidToken])
def test_a_job_without_a_policy_is_refused_in_the_callers_own_error(
    refusal: type[GatewayRefusal] | type[InvalidToken],
) -> None:
    with pytest.raises(refusal) as caught:
        PinnedPolicies().of(_job(None), PUBLISHER.did, refusal)
    assert caught.value.reason == "POLICY_MISSING"


def test_a_policy_from_another_signer_is_refused_every_time_and_never_cached() -> None:
    policies = PinnedPolicies()
    forged = _job(_envelope(STRANGER))
    for _ in range(2):
        with pytest.raises(VerificationError):
            policies.of(forged, PUBLISHER.did, GatewayRefusal)
