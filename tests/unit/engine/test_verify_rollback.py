"""``BREAKGLASS_ROLLBACK_MISSING`` says whether the rollback was never tried or tried and never
succeeded: one code for both (shared with the reference verifier), a true detail for each."""

from engine import job as states
from engine.cst import TokenKind
from engine.lifecycle import Kill, RollbackFinished
from engine.tools import ToolResult
from engine.verify import Report, verify_bundle
from tests.support.engine_sim import BOB, JobSim, trust_for

MISSING = "BREAKGLASS_ROLLBACK_MISSING"


def failed_job(removals: int) -> Report:
    """A job killed after its write, whose removal was tried ``removals`` times and failed
    each time (receipted with status error); the report of its bundle."""
    sim = JobSim()
    sim.request()
    sim.approve_both()
    sim.run_write_and_verify()
    sim.do(Kill(BOB))
    token = sim.token_string(TokenKind.ROLLBACK)
    for _ in range(removals):
        sim.advance(seconds=1)
        failed = ToolResult("error", {"error": "ServiceUnavailable"})
        sim.call(*sim.planned("rollback", "steps", "0"), token=token, result=failed)
    t = sim.do(RollbackFinished(verified=False, still_privileged=("u-alice holds r-ga",)))
    assert t.job.state == states.FAILED
    return verify_bundle(sim.bundle(), trust_for(sim.keys))


def test_a_removal_never_tried_is_reported_as_not_attempted() -> None:
    report = failed_job(0)
    assert not report.valid
    assert MISSING in report.reason_codes
    rollback = [r for r in report.reasons if r.startswith(MISSING)]
    assert rollback == [
        f"{MISSING}: the write was not rolled back: no rollback attempt after the write"
    ]


def test_removals_tried_and_failed_are_reported_as_tried_not_as_missing() -> None:
    for removals, attempts in (
        (1, "1 receipted rollback attempt"),
        (3, "3 receipted rollback attempts"),
    ):
        report = failed_job(removals)
        assert not report.valid
        assert MISSING in report.reason_codes
        rollback = [r for r in report.reasons if r.startswith(MISSING)]
        assert rollback == [f"{MISSING}: the write was not rolled back: {attempts}, none succeeded"]
        assert report.summary["rollback_verified"] is False
