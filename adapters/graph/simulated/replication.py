"""Replication delay: reads see a write only after N reads or S seconds (sim clock).

Writes always go to the primary directory. With lag configured, each write also queues a copy
of the primary; reads are served from the newest copy whose lag has passed, so a read right
after a write can still show the old state, as Graph's replicas do. Switching the lag off
lets every read see the primary again (replicas converge; they never freeze on a copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.graph.simulated.directory import Directory


@dataclass
class _Pending:
    copy: Directory
    reads_left: int
    visible_at: datetime


class Replication:
    def __init__(self, primary: Directory) -> None:
        self.primary = primary
        self.lag_reads = 0
        self.lag_seconds = 0.0
        self._visible: Directory | None = None  # None: replicas are in sync
        self._pending: list[_Pending] = []

    @property
    def lagging(self) -> bool:
        return self.lag_reads > 0 or self.lag_seconds > 0

    def before_write(self) -> None:
        if self.lagging and self._visible is None:
            self._visible = self.primary.copy()

    def after_write(self, now: datetime) -> None:
        if self._visible is not None:
            at = now + timedelta(seconds=self.lag_seconds)
            self._pending.append(_Pending(self.primary.copy(), self.lag_reads, at))

    def read_view(self, now: datetime) -> Directory:
        """The directory one read sees; counts as one read for the lag."""
        for item in self._pending:
            item.reads_left -= 1
        while self._pending and self._caught_up(self._pending[0], now):
            self._visible = self._pending.pop(0).copy
        if not self._pending:
            self._visible = None
        return self._visible if self._visible is not None else self.primary

    def _caught_up(self, item: _Pending, now: datetime) -> bool:
        if not self.lagging:
            return True  # lag switched off: replicas converge, never freeze on an old copy
        if self.lag_seconds > 0 and now >= item.visible_at:
            return True
        return self.lag_reads > 0 and item.reads_left < 0
