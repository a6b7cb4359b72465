"""The pinned-WPC cache the tool gateway and the model proxy share."""

import pytest

from bot.pinned_policies import PinnedPolicies
from engine.errors import GatewayRefusal, InvalidToken, VerificationError
from engine.job import Job
from tests.support.engine_sim import JobSim, fixed_keys


def _approved(sim: JobSim) -> Job:
    sim.request()
    sim.approve_both()  # approval publishes the WPC the job is pinned to
    assert sim.job is not None
    assert sim.job.policy_envelope is not None
    return sim.job


def test_a_policy_is_verified_once_and_then_served_from_the_cache() -> None:
    sim = JobSim()
    job = _approved(sim)
    policies = PinnedPolicies()
    first = policies.of(job, sim.keys.publisher.did, GatewayRefusal)
    again = policies.of(
        job.but(chain_length=job.chain_length + 1), sim.keys.publisher.did, GatewayRefusal
    )
    assert again is first
    assert job.policy_envelope is not None
    assert first.policy_hash_b64u == job.policy_envelope["payload_hash_b64u"]


@pytest.mark.parametrize("refusal", [GatewayRefusal, InvalidToken])
def test_a_job_without_a_policy_is_refused_in_the_callers_own_error(
    refusal: type[GatewayRefusal] | type[InvalidToken],
) -> None:
    sim = JobSim()
    sim.request()  # pending: nothing is published before the approvals
    assert sim.job is not None
    with pytest.raises(refusal) as caught:
        PinnedPolicies().of(sim.job, sim.keys.publisher.did, refusal)
    assert caught.value.reason == "POLICY_MISSING"


def test_a_policy_from_another_publisher_is_refused_every_time_and_never_cached() -> None:
    ours = JobSim()
    foreign = _approved(JobSim(keys=fixed_keys(b"other")))
    policies = PinnedPolicies()
    for _ in range(2):
        with pytest.raises(VerificationError):
            policies.of(foreign, ours.keys.publisher.did, GatewayRefusal)
