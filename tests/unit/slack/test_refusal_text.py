"""The ephemeral line a refused Slack request or click gets."""

from adapters.slack.inbound import refusal_text
from engine.grants import TARGET_BUSY
from engine.outcome import Outcome


def test_a_refusal_that_changed_nothing_says_so() -> None:
    text = refusal_text(Outcome(False, "job-2", reason=TARGET_BUSY, detail="job job-1 is open"))
    assert text == ":no_entry: Refused, nothing was changed: TARGET_BUSY: job job-1 is open"


def test_a_refusal_that_ended_the_job_does_not_claim_nothing_changed() -> None:
    """The last approval of a grant a live job took: not counted, and the job ends denied."""
    ended = Outcome(False, "job-2", {"state": "denied"}, TARGET_BUSY, "job job-1 went live first")
    assert refusal_text(ended) == ":no_entry: Refused: TARGET_BUSY: job job-1 went live first"
