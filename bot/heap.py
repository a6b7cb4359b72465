"""Keep the garbage collector's full passes short in a long-running service (ADR 0015).

A started service holds ~230k objects that live as long as the process: modules, the SDKs'
tables, settings, keys. CPython's full collection walks every tracked object, so under load
each one stopped the event loop for 0.17-0.27 s, which set the chat ack tail. After start-up
these objects are moved out of the collector's sight (``gc.freeze``, documented "to speed up
collection"); a full pass then walks only what the service made since (~50k objects).
"""

from __future__ import annotations

import gc


def freeze_start_up() -> int:
    """Collect what start-up left behind, then freeze what remains; returns how many objects
    were frozen. Once per process, after start-up: anything frozen is never collected (a
    cycle among them that dies later stays in memory), so tests' processes do not call it."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
