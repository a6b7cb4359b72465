"""The store refuses writes and the tenant refuses the window end's steps too. The log says
it once per change of what is left, not once per tick (an operator reading an outage's log
must find the job, not a wall of the same line); and once the tenant takes the restore, it
goes out at once, though the store could not record that the refused write had not landed
(the claim's void, ADR 0014)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from adapters.graph.simulated import Fault
from tests.integration.faults.conftest import JOB, FullEnv, active_job
from tests.integration.faults.test_store_full import given, holds, ticks, window_end


def escalations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.getMessage().startswith(f"ESCALATION job {JOB}")
    ]


async def test_an_unrecorded_end_whose_steps_keep_failing_is_said_once_per_change(
    full: FullEnv, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, "ca-exclusion")
    await full.disk.fill()
    full.sim.add_fault(Fault("unavailable", "PATCH", "conditionalAccess", times=10**6))
    await window_end(full)

    await ticks(full, timedelta(minutes=5))  # ten rounds, each restore refused
    said = escalations(caplog)
    given(holds(full, "ca-exclusion"), "the tenant refused every restore")
    assert len(said) == 1, said
    assert "still:" in said[0]

    full.sim.core.faults.clear()
    await ticks(full, timedelta(minutes=2))  # less than a claim's hold (5 minutes)
    assert not holds(full, "ca-exclusion"), "the restore waited for its own refused claim"
    said = escalations(caplog)
    assert len(said) == 2, said
    assert "ran unrecorded" in said[1]
