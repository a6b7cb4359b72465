import asyncio

from adapters.graph.pacer import Pacer
from tests.support.virtual_time import SteppedSeconds


async def test_requests_are_spaced_by_the_interval() -> None:
    time = SteppedSeconds(100.0)
    pacer = Pacer(1.0, clock=time, sleep=time.sleep)
    await pacer.wait()
    time.now += 0.25
    await pacer.wait()
    await pacer.wait()
    assert time.waits == [0.75, 1.0]


async def test_concurrent_callers_are_serialised() -> None:
    time = SteppedSeconds(100.0)
    pacer = Pacer(0.5, clock=time, sleep=time.sleep)
    await asyncio.gather(*(pacer.wait() for _ in range(4)))
    assert time.waits == [0.5, 0.5, 0.5]
