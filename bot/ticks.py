"""The service's clock: what a tick and a (re)start do for the open jobs of this replica.

A tick advances every open job this replica runs, or that no live replica runs any more
(its lease expired: taken over), and writes only what is due. A start makes every open job
whole again (its executor running, its rollback going on) and then ticks.

Neither is held back by a store that refuses writes or does not answer (ADR 0021, ADR 0024):
a window that ends meanwhile is ended here unrecorded, and recorded once the store takes
writes again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot import metrics
from engine import lifecycle
from engine.cst import TokenKind
from engine.errors import StoreError
from engine.job import ACTIVE, OPEN, ROLLING_BACK, Job

if TYPE_CHECKING:
    from bot.service import JobService

log = logging.getLogger("breakglass.service")


async def tick(service: JobService) -> None:
    refused: StoreError | None = None
    try:
        await service.leases.keep_all()
    except StoreError as err:  # held here still: nobody can take them while it refuses
        refused = err
    await service.unrecorded.record_pending()
    metrics.LEASES_HELD.set(len(service.leases))
    try:
        jobs = await service.open_jobs()
        holders = await service.store.lease_holders(service.clock()) if jobs else {}
    except StoreError as err:  # it cannot be read (it does not answer): the jobs run here
        refused = refused or err
        leased = service.leases
        jobs = [j for j in service.held_jobs() if j.state in OPEN and j.job_id in leased]
        holders = {}
    else:
        service.chat.forget_ended({job.job_id for job in jobs})  # some may have ended elsewhere
    for job in jobs:
        if holders.get(job.job_id, service.leases.owner) == service.leases.owner:
            try:
                await _tick_job(service, job)
            except StoreError as err:  # the other jobs are still ticked
                refused = refused or err
    if refused is not None:
        raise refused  # the timer says it once a while


async def _tick_job(service: JobService, job: Job) -> None:
    job_id = job.job_id
    if job.state == ROLLING_BACK:
        service.rollbacks.spawn(job_id)  # the runner takes the lease, or leaves it be
        return
    if job.state == ACTIVE and job_id not in service.leases:
        try:
            if not await service.leases.take(job_id):
                return
        except StoreError:  # nobody can take it: a due end is not held back for it
            if not _due(service, job):
                raise
            await service.command(job_id, lifecycle.Tick())  # refused: ended unrecorded
            return
        await run_active(service, job)  # a dead replica's job (or one started elsewhere)
    if _due(service, job) and await service.leases.keep(job_id):
        await service.command(job_id, lifecycle.Tick())


def _due(service: JobService, job: Job) -> bool:
    """Would a tick change the job now? (The pure transition says; nothing is written.)"""
    transition = service.would(job, lifecycle.Tick())
    return transition is not None and not transition.result.get("idle")


async def run_active(service: JobService, job: Job) -> None:
    """Make an active job whole on this replica: its policy published, its executor
    running until the window ends (the executor finds what is already done)."""
    if service.unrecorded.holds(job.job_id):  # a person ended it, unrecorded (ADR 0021)
        service.unrecorded.stop_agent(job)
        return
    if job.policy_envelope is not None:
        await service.store.put_policy(job.plan.plan_hash, job.policy_envelope)
    end = job.window_end_at()
    if end is not None and service.clock() < end and service.executor is not None:
        await service.executor.start(job.to_json(), service.token_for(job, TokenKind.AGENT))


async def resume(service: JobService) -> None:
    """Jobs another live replica runs are left to it (the tick takes them over if it dies)."""
    service.listen()
    leases = service.leases
    try:  # writes: a store that refuses them (a full disk) must not stop the start
        await leases.adopt()  # what this replica ran before a crash is its own at once
        holders = await service.store.lease_holders(service.clock())
        for job in await service.open_jobs():
            service.revoked.update(t.jti for t in job.tokens if t.revoked_at is not None)
            mine = holders.get(job.job_id, leases.owner) == leases.owner
            if mine and job.state == ACTIVE and await leases.take(job.job_id):
                await run_active(service, job)
        await tick(service)
    except StoreError as refused:  # the timers go on; each tick tries again
        log.warning("started with open jobs not yet made whole: %s", str(refused)[:300])
