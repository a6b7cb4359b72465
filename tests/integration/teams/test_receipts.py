"""One receipts event is one Teams reply, however many records it carries; a failed write
and a delayed removal are announced once in the job's thread."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adapters.graph.simulated import Fault
from cards import wording
from engine.job import KILLED, Job
from engine.ports import ChatEvent
from engine.timeutil import parse_iso
from tests.integration.teams.conftest import BOB, CAROL, TeamsEnv
from tests.integration.teams.fakes import heading
from tests.integration.teams.flow import active, approve, press, requested
from tests.support.receipts import closed_while_chat_was_down, receipt_summaries, shown_seqs


def receipt_headings(env: TeamsEnv) -> list[str]:
    found = [heading(c.card) for c in env.connector.calls if c.card is not None]
    return [h for h in found if receipt_summaries([h])]


async def job_run_while_teams_was_down(env: TeamsEnv) -> Job:
    """A whole job (approved, written, rolled back) whose receipts Teams never got."""
    job, _ = await active(env)
    await env.connector.stop()
    return await closed_while_chat_was_down(env, job.job_id, env.connector.restart)


async def test_a_burst_of_records_in_one_event_is_one_reply(teams: TeamsEnv) -> None:
    job = await job_run_while_teams_was_down(teams)
    shown_before, receipts_before = (
        shown_seqs(receipt_headings(teams)),
        len(receipt_headings(teams)),
    )
    chain = await teams.store.chain(job.job_id)
    missed = [r for r in chain if r.seq not in shown_before]
    assert len(missed) >= 5  # tokens revoked, rollback calls, the run end
    calls = len(teams.connector.calls)
    await teams.bot.deliver(ChatEvent("receipts", job.to_json(), {}, chain, teams.clock.now()))
    assert len(teams.connector.calls) == calls + 1
    assert shown_seqs(receipt_headings(teams)[-1:]) == [r.seq for r in missed]
    # What Teams missed comes from the outbox later: no record shown twice, no extra reply.
    assert await teams.bot.deliver_queued(teams.clock.now() + timedelta(hours=1)) > 0
    assert len(receipt_headings(teams)) == receipts_before + 1
    assert sorted(shown_seqs(receipt_headings(teams))) == [r.seq for r in chain]


async def test_a_failed_write_is_announced_once_in_the_thread(teams: TeamsEnv) -> None:
    job, status_id = await requested(teams)
    await approve(teams, BOB)
    teams.sim.add_fault(
        Fault("unavailable", method="POST", path="roleAssignmentScheduleRequests", times=10_000)
    )
    await approve(teams, CAROL)
    await teams.settle()
    ended = await teams.service.load(job.job_id)
    assert ended.end_reason == "write_failed", ended
    title = wording.ENDED_EARLY_TITLES["write_failed"]
    said = teams.connector.titled(title)
    assert len(said) == 1
    assert said[0].target == status_id
    assert wording.ENDED_EARLY_NEXT in str(said[0].card)


async def test_a_kill_in_the_first_minutes_tells_the_thread_when_removal_runs(
    teams: TeamsEnv,
) -> None:
    teams.sim.strict = True  # PIM refuses a removal in the first 5 minutes after activation

    async def clock_sleep(seconds: float) -> None:  # waiting moves the manual clock
        teams.clock.advance(timedelta(seconds=seconds))

    teams.service.sleep = clock_sleep
    job, status_id = await active(teams)
    status_card = teams.connector.updates(status_id)[-1].card
    assert status_card is not None
    await press(teams, BOB, status_card, "kill", status_id)
    await teams.settle()
    killed = await teams.service.load(job.job_id)
    assert killed.state == KILLED, killed.still_privileged
    said = teams.connector.titled("Removal delayed")
    assert len(said) == 1
    allowed = parse_iso(killed.window_start or "") + timedelta(minutes=5)
    runs = " ".join(r["text"] for r in walk_runs(said[0].card or {}))
    assert f"can be removed from {wording.at_minute(allowed)}; removal will run then." in runs
    assert runs.count("Sessions of ") == 1


def walk_runs(node: Any) -> list[dict[str, Any]]:
    """Every TextRun of a card, in order."""
    if isinstance(node, list):
        return [run for item in node for run in walk_runs(item)]
    if isinstance(node, dict):
        own = [node] if node.get("type") == "TextRun" else []
        return own + [run for value in node.values() for run in walk_runs(value)]
    return []
