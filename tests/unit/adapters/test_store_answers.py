"""How long a store caller waits for the database (ADR 0024), on a real thread pool: a
statement held on its thread by an event stands for a database that does not answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.store.answers import Answers
from engine.errors import StoreError

SECONDS = 1.0  # how long a caller waits; nothing below depends on the machine being fast


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


async def test_a_silent_database_is_an_error_then_refused_at_once_until_it_answers(
    pool: ThreadPoolExecutor,
) -> None:
    answers, held = Answers(SECONDS), threading.Event()

    with pytest.raises(StoreError, match="did not answer within 1 s"):
        await answers.call(lambda: pool.submit(held.wait), "load")
    started = time.monotonic()
    with pytest.raises(StoreError, match="has not answered for"):
        await answers.call(lambda: pool.submit(lambda: "never run"), "load")
    assert time.monotonic() - started < SECONDS, "a stalled store made its caller wait"

    held.set()  # the database answers the statement that waited
    for _ in range(200):  # its thread ends it: bounded by that work, not by a clock
        try:
            assert await answers.call(lambda: pool.submit(lambda: "answered"), "load") == (
                "answered"
            )
            return
        except StoreError:
            await asyncio.sleep(SECONDS / 20)
    raise AssertionError("still stalled after the statement ended")


async def test_a_probe_goes_through_once_its_wait_has_passed_and_clears_the_stall(
    pool: ThreadPoolExecutor,
) -> None:
    answers, held = Answers(SECONDS), threading.Event()
    try:
        with pytest.raises(StoreError):
            await answers.call(lambda: pool.submit(held.wait), "renew")
        await asyncio.sleep(SECONDS * 1.1)  # at least that long: a probe is due

        # The other thread answers (a new connection, say) while the first still waits.
        assert await answers.call(lambda: pool.submit(lambda: 7), "load") == 7
        assert await answers.call(lambda: pool.submit(lambda: 8), "load") == 8
    finally:
        held.set()


async def test_an_error_of_the_statement_itself_is_not_a_silent_database(
    pool: ThreadPoolExecutor,
) -> None:
    def fails() -> None:
        raise TimeoutError("the driver's own")

    answers = Answers(SECONDS)
    with pytest.raises(TimeoutError, match="the driver's own"):
        await answers.call(lambda: pool.submit(fails), "load")
    assert await answers.call(lambda: pool.submit(lambda: 1), "load") == 1
