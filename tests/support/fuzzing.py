"""Property tests against a live server: Hypothesis draws, the server's own loop answers.

Hypothesis drives a plain function, so it runs in a worker thread while the test's event
loop stays free to serve; each drawn input is sent on that loop and awaited from the thread.
Seeds are fixed (``derandomize``) and the number of examples bounded, so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 60
ANSWER_WITHIN = 30.0  # hang guard for one example, not a speed expectation

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``doc`` a value could be swapped (each key and list item, nested)."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += paths(value, (*prefix, index))
    return found


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``doc`` with the value at ``path`` swapped for ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: replaced(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = replaced(doc[head], rest, value)
    return copy


def mutations(doc: Any) -> st.SearchStrategy[Any]:
    """``doc`` with any one field (at any depth) swapped for any JSON value, or dropped."""
    where = st.sampled_from(paths(doc))
    swapped = st.builds(lambda p, v: replaced(doc, p, v), where, json_values)
    return swapped | st.builds(lambda p: _dropped(doc, p), where)


def _dropped(doc: Any, path: tuple[Any, ...]) -> Any:
    parent_path, last = path[:-1], path[-1]
    parent = doc
    for step in parent_path:
        parent = parent[step]
    if isinstance(parent, dict):
        smaller = {k: v for k, v in parent.items() if k != last}
    else:
        smaller = [v for i, v in enumerate(parent) if i != last]
    return replaced(doc, parent_path, smaller)


async def check_property(
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], Awaitable[None]],
    examples: int = EXAMPLES,
) -> None:
    """Run ``check`` on ``examples`` drawn inputs (fixed seed), each on the calling loop."""
    loop = asyncio.get_running_loop()

    @settings(
        derandomize=True,
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def each(drawn: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(drawn), loop).result(ANSWER_WITHIN)

    await asyncio.to_thread(each)


def our_errors(records: list[logging.LogRecord]) -> list[str]:
    """What our code logged at ERROR (a failed listener or turn); third-party loggers aside."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR and r.name.startswith("breakglass")
    ]
