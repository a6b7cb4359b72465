"""One open job per grant (TARGET_BUSY), through the service: a request for an open job's
grant is refused with nothing stored; the grant is free once the job ends; of two requests
that both got through, the second to be approved ends denied; replicas cannot both win."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from engine.errors import JobNotFound
from engine.grants import END_TARGET_BUSY, TARGET_BUSY
from engine.job import ACTIVE, CLOSED, DENIED, KILLED, PENDING
from engine.lifecycle import Approve, Kill
from engine.outcome import Outcome
from engine.targets import ResolvedTarget
from engine.verify import verify_bundle
from tests.integration.service.conftest import Env, build_env, opened_env
from tests.integration.service.test_jobs import request
from tests.support.engine_sim import ROLE_TARGETS, trust_for
from tests.support.fakes import MemoryTenant

ALICE_UPN = "Alice@Contoso.example"  # resolves to u-alice, the id ROLE_TARGETS names


class Resolver:
    """The tenant's directory as the preflight read sees it: a UPN becomes its object id.
    With ``meet``, each read waits until that many requests are being resolved, so they
    all read the open jobs before any of them is stored (two replicas at the same moment)."""

    def __init__(self, meet: int = 0) -> None:
        self.meet = meet
        self.arrived = 0
        self.together = asyncio.Event()

    async def resolve_targets(
        self, template: str, targets: Mapping[str, str]
    ) -> Mapping[str, ResolvedTarget]:
        self.arrived += 1
        if self.arrived >= self.meet:
            self.together.set()
        await self.together.wait()
        given = targets["principal_id"]
        object_id = "u-alice" if given.lower() == ALICE_UPN.lower() else given
        return {"principal_id": ResolvedTarget("principal_id", given, object_id, "Alice")}


def create_together(*envs: Env) -> None:
    """Each replica's first job write waits until every replica has come to write one: so
    each has read the open jobs (none) before any is stored, whatever the machine's speed
    (the replicas' stores are two threads, with no order between them)."""
    arrived, everyone = [0], asyncio.Event()
    for env in envs:
        create = env.store.create_job

        async def together(update: Any, create: Any = create) -> Any:
            arrived[0] += 1
            if arrived[0] >= len(envs):
                everyone.set()
            await everyone.wait()
            return await create(update)

        env.store.create_job = together  # type: ignore[method-assign]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with opened_env(tmp_path, resolver=Resolver()) as environment:
        yield environment


async def ask(env: Env, job_id: str, **changes: object) -> Outcome:
    s = env.service
    return await s.request(request(job_id, actor=s.actor("console:alice"), **changes))


async def approve_both(env: Env, job_id: str) -> list[Outcome]:
    s = env.service
    plan = (await s.load(job_id)).plan.plan_hash
    outcomes = [
        await s.command(job_id, Approve(s.actor(who), plan))
        for who in ("console:bob", "console:dave")
    ]
    await env.settle()
    return outcomes


async def test_a_request_for_an_open_jobs_grant_is_refused_and_changes_nothing(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await ask(env, "job-1")).ok
    assert all(o.ok for o in await approve_both(env, "job-1"))
    before = (await env.store.list_jobs(), await env.store.grant_claims(), len(env.chat.events))
    granted = set(env.tenant.roles)
    caplog.set_level(logging.INFO, "breakglass.service")
    # The same grant typed another way: a UPN in other letters, resolved to the same id.
    shouted = ROLE_TARGETS | {"principal_id": ALICE_UPN.upper()}
    out = await ask(env, "job-2", targets=shouted)
    assert (out.ok, out.reason) == (False, TARGET_BUSY)
    assert "job-1" in out.detail
    with pytest.raises(JobNotFound):
        await env.service.load("job-2")
    after = (await env.store.list_jobs(), await env.store.grant_claims(), len(env.chat.events))
    assert after == before  # nothing stored, no claim moved, nobody asked
    assert env.tenant.roles == granted
    assert any(
        "refused request by console:alice" in r.getMessage()
        and getattr(r, "reason", "") == TARGET_BUSY
        and getattr(r, "job_id", "") == "job-2"
        for r in caplog.records
    )


async def test_the_grant_is_free_again_once_the_job_ends(env: Env) -> None:
    s = env.service
    assert (await ask(env, "job-1")).ok
    refused = await ask(env, "job-2")  # a pending request holds its grant too
    assert (refused.ok, refused.reason) == (False, TARGET_BUSY)
    assert (await s.command("job-1", Kill(s.actor("console:dave")))).ok
    assert (await s.load("job-1")).state == KILLED
    assert (await ask(env, "job-2")).ok
    assert all(o.ok for o in await approve_both(env, "job-2"))
    assert (await s.load("job-2")).state == ACTIVE
    assert set((await env.store.grant_claims()).values()) == {"job-2"}
    env.clock.advance(minutes=31)  # the window ends; the rollback closes the job
    await s.tick()
    await env.settle()
    assert (await s.load("job-2")).state == CLOSED
    assert await env.store.grant_claims() == {}
    assert (await ask(env, "job-3")).ok


async def test_another_grant_is_not_busy(env: Env) -> None:
    assert (await ask(env, "job-1")).ok
    eve = ROLE_TARGETS | {"principal_id": "u-eve"}
    assert (await ask(env, "job-2", targets=eve)).ok


async def test_of_two_pending_requests_on_one_grant_the_second_approved_ends_denied(
    tmp_path: Path,
) -> None:
    """Two requests resolved at the same moment on two replicas both read no open job, so
    both are pending. The first to be approved goes live; the second's last approval ends
    it denied (TARGET_BUSY, receipted) and the tenant holds one grant, never two."""
    tenant = MemoryTenant()
    env = await build_env(tmp_path, tools=lambda _t, _c: tenant, resolver=Resolver())
    other = await build_env(tmp_path, tools=lambda _t, _c: tenant, resolver=Resolver())
    create_together(env, other)
    try:
        s = env.service
        first, second = await asyncio.gather(ask(env, "job-1"), ask(other, "job-2"))
        assert first.ok, first
        assert second.ok, second
        assert {(await s.load(j)).state for j in ("job-1", "job-2")} == {PENDING}
        assert all(o.ok for o in await approve_both(env, "job-2"))
        bob, dave = await approve_both(env, "job-1")
        assert bob.ok  # the first approval counts as ever
        assert (dave.ok, dave.reason) == (False, TARGET_BUSY)
        assert "job-2" in dave.detail
        loser = await s.load("job-1")
        assert (loser.state, loser.end_reason) == (DENIED, END_TARGET_BUSY)
        assert loser.refusals[-1]["reason"] == TARGET_BUSY
        assert loser.tokens == ()
        assert (await s.load("job-2")).state == ACTIVE
        assert tenant.roles == {_role()}
        assert set((await env.store.grant_claims()).values()) == {"job-2"}
        bundle, _ = await s.bundle(loser)
        assert verify_bundle(bundle, trust_for(s.keys)).valid
        finished = [e for e in env.chat.events if e.kind == "finish"]
        assert [e.job["job_id"] for e in finished] == ["job-1"]
    finally:
        for replica in (env, other):
            await replica.settle()
            await replica.store.close()


async def test_requests_at_once_on_one_replica_make_one_job(tmp_path: Path) -> None:
    """Five requests for one grant resolved at the same moment: one job is pending, the
    other four are refused before anyone is asked, and nothing of theirs is stored."""
    env = await build_env(tmp_path, resolver=Resolver(meet=5))
    try:
        outcomes = await asyncio.gather(*(ask(env, f"job-{n}") for n in range(5)))
        assert sorted(o.reason for o in outcomes) == ["", *[TARGET_BUSY] * 4]
        assert [j.job_id for j in await env.store.list_jobs()] == [
            o.job_id for o in outcomes if o.ok
        ]
        assert len(env.service._requests) == 0  # the per-grant locks are gone again
    finally:
        await env.settle()
        await env.store.close()


async def test_two_replicas_approving_at_once_make_one_job_live(tmp_path: Path) -> None:
    """Both pending jobs get their last approval on two replicas at the same moment: the
    store's claim lets one activate; the other ends denied, whichever came first."""
    tenant = MemoryTenant()
    one = await build_env(tmp_path, tools=lambda _t, _c: tenant, resolver=Resolver())
    two = await build_env(tmp_path, tools=lambda _t, _c: tenant, resolver=Resolver())
    create_together(one, two)
    try:
        await asyncio.gather(ask(one, "job-1"), ask(two, "job-2"))
        for job_id in ("job-1", "job-2"):
            plan = (await one.service.load(job_id)).plan.plan_hash
            bob = one.service.actor("console:bob")
            assert (await one.service.command(job_id, Approve(bob, plan))).ok
        last = [
            env.service.command(job_id, Approve(env.service.actor("console:dave"), plan))
            for env, job_id, plan in [
                (one, "job-1", (await one.service.load("job-1")).plan.plan_hash),
                (two, "job-2", (await two.service.load("job-2")).plan.plan_hash),
            ]
        ]
        outcomes = await asyncio.gather(*last)
        await one.settle()
        await two.settle()
        states = sorted([(await one.service.load(j)).state for j in ("job-1", "job-2")])
        assert states == sorted([ACTIVE, DENIED])
        assert sorted(o.reason for o in outcomes) == ["", TARGET_BUSY]
        assert len(await one.store.grant_claims()) == 1
        assert tenant.roles == {_role()}
    finally:
        for env in (one, two):
            await env.settle()
            await env.store.close()


def _role() -> tuple[str, str, str]:
    t = ROLE_TARGETS
    return (t["tenant_id"], t["principal_id"], t["role_definition_id"])
