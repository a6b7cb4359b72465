"""``Bounded``: at most ``limit`` entries, the first kept dropped first."""

from __future__ import annotations

from adapters.bounded import Bounded


def test_the_oldest_entry_goes_first_once_past_the_limit() -> None:
    kept: Bounded[str, int] = Bounded(2)
    assert kept.keep("a", 1) == 1
    kept.keep("b", 2)
    kept.keep("c", 3)
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (None, 2, 3)
