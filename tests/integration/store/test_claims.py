"""Grant claims: one live job per grant key, taken and dropped inside the job's own write."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from adapters.store import SqlStore
from engine.errors import ConcurrentUpdate, GrantClaimed
from tests.integration.store.conftest import link, new_job, step
from tests.integration.store.test_jobs import everything, loaded_update

KEY = "k" * 64


async def test_an_activating_write_claims_the_grant_and_a_resolving_one_drops_it(
    store: SqlStore,
) -> None:
    await store.create_job(new_job("job-1"))
    await store.update_job(step("job-1", 1, claim=KEY))
    assert await store.grant_claims() == {KEY: "job-1"}
    await store.update_job(step("job-1", 2, claim=KEY))  # its own claim again: success
    assert await store.grant_claims() == {KEY: "job-1"}
    await store.update_job(step("job-1", 3, release_claims=True))
    assert await store.grant_claims() == {}


async def test_a_claim_another_job_holds_undoes_the_whole_write(store: SqlStore) -> None:
    await store.create_job(new_job("job-1"))
    await store.create_job(new_job("job-2"))
    await store.update_job(step("job-2", 1, claim=KEY))
    before = await everything(store)
    with pytest.raises(GrantClaimed) as err:
        await store.update_job(replace(loaded_update(1), claim=KEY))
    assert err.value.holder == "job-2"
    assert isinstance(err.value, ConcurrentUpdate)  # the service reloads and decides again
    assert await everything(store) == before  # neither the job nor any child was written
    assert await store.grant_claims() == {KEY: "job-2"}


async def test_two_writers_racing_for_one_grant_one_wins(store: SqlStore) -> None:
    """On PostgreSQL the second INSERT waits for the first transaction, then finds its row."""
    for job_id in ("job-1", "job-2"):
        await store.create_job(new_job(job_id))
    results = await asyncio.gather(
        store.update_job(step("job-1", 1, claim=KEY, chain=[link("job-1", 1)])),
        store.update_job(step("job-2", 1, claim=KEY, chain=[link("job-2", 1)])),
        return_exceptions=True,
    )
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(lost) == 1, results
    assert isinstance(lost[0], GrantClaimed), results
    winner = (await store.grant_claims())[KEY]
    loser = "job-2" if winner == "job-1" else "job-1"
    assert lost[0].holder == winner
    assert (await store.load_job(loser)).version == 1  # its write left no trace
    assert await store.chain(loser) == []
