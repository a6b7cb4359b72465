"""The console's feed says what Slack and Teams say for a failure or a delayed removal."""

from __future__ import annotations

from datetime import timedelta

from adapters.console.channel import ConsoleChannel
from cards import wording
from engine.catalog import REVOKE_SESSIONS
from engine.ports import ChatEvent
from engine.timeutil import iso_ms
from tests.support.engine_sim import JobSim


def job_document() -> tuple[dict[str, object], JobSim]:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    return sim.job.to_json(), sim


async def test_a_delayed_removal_reads_as_on_the_chat_cards() -> None:
    doc, sim = job_document()
    when = sim.now + timedelta(minutes=4, seconds=10)
    detail = {
        "event": "removal_delayed",
        "not_before": iso_ms(when),
        "contained": [REVOKE_SESSIONS],
    }
    console = ConsoleChannel({"u-alice": "Alice Requester"})
    await console.deliver(ChatEvent("announce", doc, detail, (), sim.now))
    (entry,) = console.feed
    assert entry["text"].startswith("Removal delayed by the tenant")
    assert (
        "Sessions of Alice Requester (id u-alice) revoked; the role r-ga (id r-ga)" in entry["text"]
    )
    assert f"can be removed from {wording.at_minute(when)}; removal will run then." in entry["text"]


async def test_a_failed_write_says_why_and_other_events_carry_no_text() -> None:
    doc, sim = job_document()
    console = ConsoleChannel()
    detail = {"event": "executor_failed", "detail": "runbook\u202e crashed"}
    await console.deliver(ChatEvent("announce", doc, detail, (), sim.now))
    await console.deliver(ChatEvent("announce", doc, {"decision": "approve"}, (), sim.now))
    await console.deliver(ChatEvent("update_cards", doc, {}, (), sim.now))
    failed, decided, updated = console.feed
    assert wording.ENDED_EARLY_TITLES["executor_failed"] in failed["text"]
    assert "runbook[U+202E] crashed" in failed["text"]  # tenant text shown inert
    assert (decided["text"], updated["text"]) == (None, None)
