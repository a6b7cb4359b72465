"""The incident channel refuses the bot mid-job: archived by an admin, or the bot removed.

Chat is beside the job (DESIGN §10): the job still ends closed, with a bundle that verifies
and nothing privileged. In Slack the refusal is said once (an ERROR naming the job, the
channel and what to do; the requester told in a DM), the approvers' DMs go on, nothing waits
in the outbox for ever, and no other channel is held back.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from adapters.graph.simulated import Fault
from adapters.slack import refs as kinds
from engine.canonical import jcs, strict_loads
from engine.job import ACTIVE, CLOSED
from engine.verify import verify_bundle
from tests.integration.graph.support import DAVE as DAVE_OID
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import OTHER_GRANT, approve_job, dm_of, ref_of, request_job
from tests.integration.slack.support import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    INCIDENT,
    OTHER_CHANNEL,
    SECRET,
    TOKEN,
)
from tests.support.engine_sim import trust_for
from tests.support.receipts import shown_seqs


@pytest.fixture
def slack_overrides() -> dict[str, Any]:
    return {"incident_channels": frozenset({INCIDENT, OTHER_CHANNEL})}


def warnings_and_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("breakglass")
    ]


async def active_job(env: Env, channel: str = INCIDENT, **typed: str) -> str:
    job_id = (await request_job(env, channel=channel, **typed)).job_id
    await approve_job(env, job_id, BOB)
    await approve_job(env, job_id, CAROL)
    assert (await env.service.load(job_id)).state == ACTIVE
    return job_id


async def run_to_window_end(env: Env) -> None:
    """Countdown notices at 10 and 20 minutes, then the 30-minute window ends."""
    for minutes in (10, 10, 11):
        env.advance(minutes=minutes)
        await env.service.tick()
        await env.settle()


async def queued(env: Env) -> int:
    return len(await env.store.due("slack", env.clock.now() + timedelta(days=1)))


async def thread_texts_of(env: Env, job_id: str) -> list[str]:
    card = await ref_of(env, job_id, kinds.STATUS)
    return env.fake.thread(card["channel"], card["ts"])


async def test_an_incident_channel_archived_mid_window_ends_closed_verified_and_unprivileged(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await active_job(env)
    assert holders(env.sim, USER_ADMIN) == {DAVE_OID}
    env.fake.archive(INCIDENT)  # an admin archives the incident channel mid-window
    await run_to_window_end(env)

    job = await env.service.load(job_id)
    assert job.state == CLOSED
    assert job.ended_at is not None
    assert job.still_privileged == ()
    assert holders(env.sim, USER_ADMIN) == set()
    bundle: Any = strict_loads(jcs(await env.slack.ports.records.bundle(job)))
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons

    # Slack: said once, by name, with what to do; the requester told once, in a DM.
    (line,) = warnings_and_errors(caplog)
    assert line.levelno == logging.ERROR
    assert job_id in line.getMessage()
    assert INCIDENT in line.getMessage()
    assert "is_inactive" in line.getMessage()  # what chat.update answers there
    assert f"unarchive {INCIDENT}" in line.getMessage()
    assert not line.exc_info
    told = [str(p.get("text")) for p in env.fake.posts(f"D{ALICE}")]
    assert len(told) == 1
    assert "the channel is archived" in told[0]
    assert TOKEN not in caplog.text
    assert SECRET not in caplog.text
    # Nothing waits to be retried; no later round asks Slack about this job again.
    assert await queued(env) == 0
    calls = len(env.fake.calls)
    assert await env.slack.deliver_queued(env.clock.now() + timedelta(days=1)) == 0
    assert len(env.fake.calls) == calls


async def test_approvals_go_on_in_the_dms_while_the_channel_is_archived(env: Env) -> None:
    job_id = (await request_job(env)).job_id
    env.fake.archive(INCIDENT)
    await approve_job(env, job_id, BOB)
    await approve_job(env, job_id, CAROL)
    assert (await env.service.load(job_id)).state == ACTIVE
    for user in (BOB, CAROL, DAVE):  # each prompt turned into the decision, buttons gone
        prompt = dm_of(env, user)
        assert prompt["text"].startswith("Approval recorded")
        assert "actions" not in json.dumps(prompt["blocks"])
    assert await queued(env) == 0


async def test_the_bot_removed_mid_window_is_said_once_and_its_card_carries_on_after_the_invite(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="breakglass")
    job_id = await active_job(env)
    env.fake.remove_bot(INCIDENT)
    env.advance(minutes=10)
    await env.service.tick()  # the countdown notice: its card update is refused
    await env.settle()
    env.advance(minutes=5)
    await env.service.tick()  # the next one: tried again after the backoff, refused again
    await env.settle()
    invite = f"invite the bot to {INCIDENT}"
    (line,) = [r for r in warnings_and_errors(caplog) if job_id in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert invite in line.getMessage()
    assert await queued(env) == 0

    env.fake.invite_bot(INCIDENT)
    env.advance(minutes=5)
    await env.service.tick()
    await env.settle()
    card = await ref_of(env, job_id, kinds.STATUS)
    assert "10 min left" in json.dumps(env.fake.messages[(INCIDENT, card["ts"])])
    assert [r for r in caplog.records if "takes the bot's posts again" in r.getMessage()]
    await run_to_window_end(env)
    texts = await thread_texts_of(env, job_id)
    assert any("audit summary" in t for t in texts)
    assert [u for u in env.fake.uploads.values() if u.thread_ts == card["ts"]]
    assert len([r for r in warnings_and_errors(caplog) if job_id in r.getMessage()]) == 1


async def test_a_failed_rollback_the_archived_channel_refuses_is_told_to_the_requester(
    env: Env,
) -> None:
    job_id = await active_job(env)
    env.fake.archive(INCIDENT)
    outage = Fault("unavailable", "POST", "roleAssignmentScheduleRequests", times=10_000)
    env.sim.add_fault(outage)  # the tenant refuses every removal
    await run_to_window_end(env)
    assert (await env.service.load(job_id)).state == "failed"
    told = [str(p.get("text")) for p in env.fake.posts(f"D{ALICE}")]
    (loud,) = [t for t in told if "STILL granted" in t]
    assert DAVE_OID in loud
    assert await queued(env) == 0


async def test_a_refusing_channel_holds_back_no_other_channel_and_ends_with_its_job(
    env: Env,
) -> None:
    archived = await active_job(env)
    other = await active_job(env, OTHER_CHANNEL, **OTHER_GRANT)
    env.fake.archive(INCIDENT)
    await run_to_window_end(env)
    for job_id in (archived, other):
        assert (await env.service.load(job_id)).state == CLOSED
    # The other channel's job was shown whole, each receipt once, its bundle in its thread.
    texts = await thread_texts_of(env, other)
    assert shown_seqs(texts) == [r.seq for r in await env.store.chain(other)]
    assert any("audit summary" in t for t in texts)
    assert [u for u in env.fake.uploads.values() if u.channel == OTHER_CHANNEL]
    assert not [u for u in env.fake.uploads.values() if u.channel == INCIDENT]
    # Nothing of the archived channel's job waits to be retried after its end.
    assert await queued(env) == 0
    calls = len(env.fake.calls)
    env.advance(hours=1)
    assert await env.slack.deliver_queued(env.clock.now()) == 0
    assert len(env.fake.calls) == calls


@pytest.mark.parametrize(
    "rule",
    ["restricted_action_read_only_channel", "restricted_action", "ekm_access_denied"],
)
async def test_a_channel_whose_posting_rules_refuse_the_bot_is_said_once_and_the_job_ends(
    env: Env, caplog: pytest.LogCaptureFixture, rule: str
) -> None:
    job_id = await active_job(env)
    env.fake.restrict(INCIDENT, rule)  # an admin makes the channel read-only mid-window
    await run_to_window_end(env)

    job = await env.service.load(job_id)
    assert (job.state, job.still_privileged) == (CLOSED, ())
    assert holders(env.sim, USER_ADMIN) == set()
    (line,) = warnings_and_errors(caplog)
    assert line.levelno == logging.ERROR
    assert job_id in line.getMessage()
    assert rule in line.getMessage()
    assert "allow the bot to post" in line.getMessage()
    assert not line.exc_info
    told = [str(p.get("text")) for p in env.fake.posts(f"D{ALICE}")]
    assert len(told) == 1
    assert "posting rule" in told[0]
    assert await queued(env) == 0  # nothing waits to be retried for ever
