"""The simulated tenant's state and rules, independent of HTTP.

Holds the directory (through ``Replication``), the clock, injected faults, issued bearer
tokens, the app registration's credentials, the Conditional Access rate gate and a log of
every request received. The HTTP modules translate requests into calls on this object; the
control API and tests call it directly.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.graph.simulated.auditlog import ActivityLog, ReportsGate
from adapters.graph.simulated.clock import Clock
from adapters.graph.simulated.directory import Directory
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.faults import FaultPlan
from adapters.graph.simulated.replication import Replication

TOKEN_LIFETIME = timedelta(seconds=3599)


@dataclass(frozen=True)
class LogEntry:
    method: str
    path: str
    status: int  # 0 when the connection was dropped without an answer
    query: str = ""


@dataclass
class AppCredentials:
    """The simulated app registration: a client secret and/or certificates (by SHA-1); when
    the secret expires (its ``endDateTime``), whether the service principal is enabled, and
    which Graph permissions an administrator removed (``permissions``)."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificates: dict[str, Any] = field(default_factory=dict)  # thumbprint hex -> public key
    secret_expires: datetime | None = None
    enabled: bool = True
    removed_permissions: set[str] = field(default_factory=set)

    def secret_matches(self, given: str) -> bool:
        if self.client_secret is None:
            return False
        return hmac.compare_digest(given.encode("utf-8"), self.client_secret.encode("utf-8"))


class RateGate:
    """At most one accepted request per ``interval`` seconds.

    Measured on ``clock`` (monotonic seconds, injectable): a request rate is a property of
    elapsed time between requests, which clients pace on their own monotonic clock, so a
    manual sim clock that stands still must not turn every second request into a 429.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def admit(self) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            # CA throttling answers 429 without Retry-After: clients must back off themselves.
            raise SimError(429, "TooManyRequests", "Too many requests to Conditional Access.")
        self._last = now


class SimCore:
    """``strict`` turns on the real tenant's PIM rules (see ``pim``); ``on_change`` is called
    with the primary directory after every write (persistence)."""

    def __init__(
        self,
        directory: Directory,
        clock: Clock,
        credentials: AppCredentials,
        ca_interval: float,
        *,
        strict: bool = True,
        on_change: Callable[[Directory], None] | None = None,
        rate_clock: Callable[[], float] = time.monotonic,
        reports_rate: tuple[int, float] = (5, 10.0),
        token_lifetime: timedelta = TOKEN_LIFETIME,
    ) -> None:
        self.replication = Replication(directory)
        self.clock = clock
        self.credentials = credentials
        self.strict = strict
        self.on_change = on_change
        self.faults = FaultPlan()
        self.ca_gate = RateGate(ca_interval, rate_clock)
        self.reports_gate = ReportsGate(*reports_rate, clock=rate_clock)
        self.activity = ActivityLog()  # the directory audit and sign-in logs
        self.page_size = 100
        self.log: list[LogEntry] = []
        self.token_lifetime = token_lifetime
        # each token: when it expires, and the permissions it lacks (removed when issued)
        self._tokens: dict[str, tuple[datetime, frozenset[str]]] = {}

    @property
    def directory(self) -> Directory:
        """The primary (true) state."""
        return self.replication.primary

    def now(self) -> datetime:
        return self.clock.now()

    def read_view(self) -> Directory:
        return self.replication.read_view(self.now())

    @contextmanager
    def write(self) -> Iterator[Directory]:
        """Mutate the primary; the change reaches readers after the configured lag."""
        self.replication.before_write()
        try:
            yield self.directory
        finally:
            self.replication.after_write(self.now())
            if self.on_change is not None:
                self.on_change(self.directory)

    def issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        lacking = frozenset(self.credentials.removed_permissions)
        self._tokens[token] = (self.now() + self.token_lifetime, lacking)
        return token, int(self.token_lifetime.total_seconds())

    def check_bearer(self, header: str | None) -> frozenset[str]:
        """The permissions the token lacks; 401 when it is unknown or expired."""
        scheme, _, token = (header or "").partition(" ")
        issued = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if issued is None:
            raise _unauthorized("Access token validation failure. Invalid audience.")
        if self.now() >= issued[0]:
            raise _unauthorized("Lifetime validation failed, the token is expired.")
        return issued[1]


def _unauthorized(message: str) -> SimError:
    return SimError(
        401,
        "InvalidAuthenticationToken",
        message,
        {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )
