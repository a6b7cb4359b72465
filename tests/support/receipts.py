"""Which chain records the receipts messages in a thread show, read back from their summaries
("Receipt #7 (job …)" or "Receipts #3–#9 (job …)"), in the order they were posted."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from engine.job import CLOSED, Job

SUMMARY = re.compile(r"^Receipts? #(\d+)(?:–#(\d+))? \(job ")


def receipt_summaries(summaries: Iterable[str]) -> list[range]:
    """The seq range of every receipts message among ``summaries`` (others are skipped)."""
    found = []
    for summary in summaries:
        match = SUMMARY.match(summary)
        if match is not None:
            first = int(match.group(1))
            found.append(range(first, int(match.group(2) or first) + 1))
    return found


def shown_seqs(summaries: Iterable[str]) -> list[int]:
    """Every seq the receipts messages show, in posting order (a repeat shows up twice)."""
    return [seq for shown in receipt_summaries(summaries) for seq in shown]


async def closed_while_chat_was_down(
    env: Any, job_id: str, come_back: Callable[[], Awaitable[None]]
) -> Job:
    """Run job ``job_id`` past its window while the chat is down (rollback included), then
    bring the chat back; ``env`` is a Slack or Teams test environment."""
    env.advance(minutes=31)
    await env.service.tick()
    await env.settle()
    await come_back()
    done: Job = await env.service.load(job_id)
    assert done.state == CLOSED
    return done
