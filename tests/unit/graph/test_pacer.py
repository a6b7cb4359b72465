import asyncio

from adapters.graph.pacer import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_requests_are_spaced_by_the_interval() -> None:
    time = FakeTime()
    pacer = Pacer(1.0, clock=time.clock, sleep=time.sleep)
    await pacer.wait()
    time.now += 0.25
    await pacer.wait()
    await pacer.wait()
    assert time.slept == [0.75, 1.0]


async def test_concurrent_callers_are_serialised() -> None:
    time = FakeTime()
    pacer = Pacer(0.5, clock=time.clock, sleep=time.sleep)
    await asyncio.gather(*(pacer.wait() for _ in range(4)))
    assert time.slept == [0.5, 0.5, 0.5]
