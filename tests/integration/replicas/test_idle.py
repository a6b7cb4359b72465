"""No work without need: an idle tick writes nothing, an ended job leaves nothing behind in
the process, old idempotency keys are purged, and /metrics counts in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.job import CLOSED
from engine.lifecycle import Approve
from tests.integration.service.conftest import Env
from tests.support.engine_sim import console_request


async def active(env: Env, job_id: str) -> None:
    s = env.service
    out = await s.request(console_request(job_id, actor=s.actor("console:alice")), key=job_id)
    plan = out.result["plan_hash"]
    for who in ("bob", "carol"):
        assert (await s.command(job_id, Approve(s.actor(f"console:{who}"), plan))).ok
    await env.settle()


async def test_idle_ticks_write_nothing_and_due_ones_write_once(env: Env) -> None:
    await active(env, "job-i1")
    before = await env.store.load_job("job-i1")
    chain = len(await env.store.chain("job-i1"))
    for _ in range(5):
        env.clock.advance(seconds=30)
        await env.service.tick()
    after = await env.store.load_job("job-i1")
    assert after.version == before.version
    assert len(await env.store.chain("job-i1")) == chain
    env.clock.advance(minutes=5)  # a countdown notice is due: one write
    await env.service.tick()
    await env.service.tick()
    assert (await env.store.load_job("job-i1")).version == before.version + 1


async def test_an_ended_job_leaves_no_lease_lock_or_revoked_jti_behind(env: Env) -> None:
    await active(env, "job-i2")
    s = env.service
    assert "job-i2" in s.leases  # the executor runs here
    await s.tick()  # the service's sleeps moved the test clock: the tick renews the lease
    assert await env.store.lease_holders(env.clock()) == {"job-i2": s.leases.owner}
    env.clock.advance(minutes=31)
    await s.tick()
    await env.settle()
    job = await s.load("job-i2")
    assert job.state == CLOSED
    await s.command("job-i2", Approve(s.actor("console:bob"), job.plan.plan_hash))  # refused
    assert "job-i2" not in s.leases
    assert await env.store.lease_holders(env.clock()) == {}
    assert not {tok.jti for tok in job.tokens} & s.revoked


async def test_the_sweep_purges_idempotency_keys_past_their_window(env: Env) -> None:
    await active(env, "job-i3")
    assert await env.store.idempotent_result("job-i3") is not None
    # The store stamps keys with its own clock (the real one here): go 8 days past that.
    env.clock.now = datetime.now(UTC) + timedelta(days=8)
    await env.service.sweep()
    assert await env.store.idempotent_result("job-i3") is None
