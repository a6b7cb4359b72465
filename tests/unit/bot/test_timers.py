"""The service's timers: a failed round does not stop a timer; stop() ends every one; an
outside fault is one WARNING line without a traceback, a bug keeps its traceback, and a
fault repeated round after round is logged once, then once per REPEAT_SECONDS."""

import asyncio
import logging

import pytest

from bot.timers import REPEAT_SECONDS, Faults, Timers
from engine.errors import GraphError, StoreError


async def test_a_failed_round_does_not_stop_the_timer_and_stop_ends_it() -> None:
    rounds: list[int] = []
    second_round = asyncio.Event()

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the first round fails")
        second_round.set()

    timers = Timers()
    timers.every(0, work)
    await asyncio.wait_for(second_round.wait(), 60)  # a hang guard, not a deadline
    await timers.stop()
    seen = len(rounds)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(rounds) == seen  # nothing runs after stop()
    assert seen >= 2


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, bool]]:
    return [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]


async def test_a_store_outage_is_one_warning_then_one_recovery_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []
    recovered = asyncio.Event()

    async def sweep() -> None:
        rounds.append(len(rounds))
        if len(rounds) <= 3:
            raise StoreError("connections terminated\nsecond line")
        recovered.set()

    timers = Timers(clock=lambda: 0.0)  # time stands still: repeats stay quiet
    caplog.set_level(logging.INFO, "breakglass.app")
    timers.every(0, sweep)
    await asyncio.wait_for(recovered.wait(), 60)  # a hang guard, not a deadline
    await timers.stop()
    assert lines(caplog) == [
        ("WARNING", "periodic sweep failed: StoreError: connections terminated", False),
        ("INFO", "periodic sweep recovered", False),
    ]


def test_a_repeated_fault_is_logged_again_only_after_the_quiet_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    faults = Faults("sweep", clock=lambda: now[0])
    refused = GraphError("BadRequest", "The last active holder of this role cannot be removed")
    caplog.set_level(logging.INFO, "breakglass.app")
    for _ in range(5):
        faults.failed(refused)
        now[0] += REPEAT_SECONDS / 10
    assert len(caplog.records) == 1
    now[0] = REPEAT_SECONDS + 1
    faults.failed(refused)
    assert len(caplog.records) == 2
    assert getattr(caplog.records[1], "repeats", None) == 4  # the rounds not logged meanwhile
    faults.failed(StoreError("connection refused"))  # another fault: logged at once
    assert len(caplog.records) == 3
    assert {(r.levelname, r.exc_info) for r in caplog.records} == {("WARNING", None)}
    message = caplog.records[0].getMessage()
    assert message == f"periodic sweep failed: GraphError: {refused}"


def test_a_bug_keeps_its_traceback_once_per_distinct_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults("tick", clock=lambda: 0.0)
    caplog.set_level(logging.INFO, "breakglass.app")
    for _ in range(3):
        faults.failed(KeyError("job"))
    faults.failed(ValueError("other"))
    assert lines(caplog) == [
        ("ERROR", "periodic tick failed: KeyError: 'job'", True),
        ("ERROR", "periodic tick failed: ValueError: other", True),
    ]
