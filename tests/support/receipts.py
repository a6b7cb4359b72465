"""Which chain records the receipts messages in a thread show, read back from their summaries
("Receipt #7 (job …)" or "Receipts #3–#9 (job …)"), in the order they were posted."""

from __future__ import annotations

import re
from collections.abc import Iterable

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
