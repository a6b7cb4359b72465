"""The small version of ``make load`` and ``make chaos``: every job ends with a verifying
bundle, nothing privileged is left, nothing is removed twice, nobody escalates."""

from __future__ import annotations

import pytest

from bench.load import run

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("mode", ["load", "chaos"])
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # dead replicas
async def test_small_fleet_run_loses_nothing(pg_schema_url: str, mode: str) -> None:
    # load: a short steady phase (real time, kills meanwhile) before the burst of the drain
    steady = 4.0 if mode == "load" else 0.0
    summary = await run(pg_schema_url, mode, jobs=10, replicas=2, seed=3, steady=steady)
    assert summary.ok, (summary.line(), summary.problems)
    assert summary.terminal == summary.verified == 10
    if mode == "chaos":
        assert summary.deaths >= 1  # a replica died mid-run and its jobs were taken over
