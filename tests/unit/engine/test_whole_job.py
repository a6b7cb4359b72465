from engine import job as states
from engine.bundle import metadata_size
from engine.verify import verify_bundle
from tests.support.engine_sim import JobSim, trust_for
from tests.support.shared import assert_valid


def test_whole_job_produces_a_bundle_that_verifies() -> None:
    sim = JobSim()
    sim.whole_job()
    assert sim.job is not None
    assert sim.job.state == states.CLOSED
    bundle = sim.bundle()
    report = verify_bundle(bundle, trust_for(sim.keys))
    assert report.valid, report.reasons
    assert report.profile == "breakglass"
    assert report.summary["rollback_verified"] is True
    assert report.summary["outcome"] == "closed"
    assert [a["approver"] for a in report.summary["approvals"]] == ["u-bob", "u-carol"]
    assert metadata_size(bundle["payload"]) < 16 * 1024


def test_every_emitted_artifact_validates_against_the_reference_schemas() -> None:
    sim = JobSim()
    sim.whole_job()
    bundle = sim.bundle()
    assert_valid("proof_bundle_envelope.v1.json", bundle)
    for record in sim.records:
        env = record.envelope
        if env is None:
            continue
        schema = {
            "tool_receipt": "tool_receipt_envelope.v1.json",
            "human_approval_receipt": "human_approval_receipt_envelope.v1.json",
        }.get(env["envelope_type"])
        if schema:
            assert_valid(schema, env)
    assert_valid(
        "event_chain.v1.json",
        {
            "chain_version": "1",
            "chain_id": "c",
            "run_id": sim.job.job_id if sim.job else "",
            "events": [r.event for r in sim.records],
        },
    )
