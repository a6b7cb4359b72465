"""The service's timers: a failed round does not stop a timer; stop() ends every one."""

import asyncio

from bot.timers import Timers


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
