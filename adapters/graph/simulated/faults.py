"""Fault injection for the simulated Graph: throttling, outages, lost answers, lag.

A ``Fault`` matches requests by method and path substring and fires ``times`` times:

* ``throttle``: 429, with ``Retry-After`` when ``retry_after`` is set; nothing applied.
* ``unavailable``: 503; nothing applied.
* ``gateway_timeout``: 504; applied first when ``apply`` is true (the ambiguous case).
* ``drop``: the connection is closed without an answer; applied first when ``apply``.

The token endpoint takes only ``drop`` faults whose ``path`` names it (``/oauth2/v2.0/token``):
a fault meant for Graph (whose path may be empty, matching every Graph request) never fires
there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = frozenset({"throttle", "unavailable", "gateway_timeout", "drop"})


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str = ""
    times: int = 1
    retry_after: int | None = None
    apply: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.times < 1:
            raise ValueError("a fault must fire at least once")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and self.path in path


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear(self) -> None:
        self.faults.clear()

    def take_named(self, kind: str, method: str, path: str) -> Fault | None:
        """As ``take``, for a fault of ``kind`` whose non-empty path names this request."""
        for fault in self.faults:
            if fault.kind == kind and fault.path and fault.matches(method, path):
                return self._used(fault)
        return None

    def _used(self, fault: Fault) -> Fault:
        fault.times -= 1
        if fault.times == 0:
            self.faults.remove(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, with one of its uses consumed."""
        for fault in self.faults:
            if fault.matches(method, path):
                return self._used(fault)
        return None
