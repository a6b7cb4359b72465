"""Configuration of the Microsoft Graph adapter: one frozen object, validated on construction.

Built by ``bot/`` from its settings; nothing here reads the environment. The secret is kept
out of ``repr`` so a logged config never shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.loopback import check_base_url
from adapters.retry import Backoff
from engine.errors import ConfigError

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retries, pacing and read-back polling (seconds unless named otherwise)."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    total_budget: float = 60.0  # per logical call, across its attempts and waits
    request_timeout: float = 30.0
    # Conditional Access allows 1 request/s per tenant. A margin over it: requests paced
    # exactly 1 s apart at the sender reach Graph closer (48 of 317 got 429 with replicas).
    ca_interval: float = 1.1
    reports_interval: float = 2.0  # the reporting API (audit, sign-in logs): 5 per 10 s
    readback_attempts: int = 10  # polling bound while replication catches up
    readback_interval: float = 1.0
    write_attempts: int = 3  # resends allowed after a read-back proved a write absent

    def __post_init__(self) -> None:
        self.backoff  # noqa: B018  (building the shared rule checks attempts and delays)
        if min(self.readback_attempts, self.write_attempts) < 1:
            raise ConfigError("retry attempts must be at least 1")
        if min(self.ca_interval, self.reports_interval, self.readback_interval) < 0:
            raise ConfigError("retry delays must not be negative")
        if self.total_budget <= 0 or self.request_timeout <= 0:
            raise ConfigError("retry budget and request timeout must be positive")

    @property
    def backoff(self) -> Backoff:
        """The shared retry rule: jittered doubling, ``Retry-After`` honoured in full."""
        return Backoff(self.base_delay, self.max_delay, self.max_attempts, self.total_budget)


@dataclass(frozen=True)
class CertificateCredential:
    """A PEM private key file and the SHA-1 thumbprint Entra shows for its certificate."""

    private_key_path: Path
    thumbprint: str

    def __post_init__(self) -> None:
        hex_digits = self.thumbprint.replace(":", "")
        if len(hex_digits) != 40 or not all(c in "0123456789abcdefABCDEF" for c in hex_digits):
            raise ConfigError("certificate thumbprint must be 40 hex digits (SHA-1)")


@dataclass(frozen=True)
class GraphConfig:
    """Everything needed to reach one tenant with one app registration."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate: CertificateCredential | None = None
    authority_base_url: str = "https://login.microsoftonline.com"
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    scope: str = GRAPH_SCOPE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    deployment: str = ""  # written into our markers: the sweep leaves other deployments' grants

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.client_id:
            raise ConfigError("tenant_id and client_id are required")
        if (self.client_secret is None) == (self.certificate is None):
            raise ConfigError("give exactly one credential: client_secret or certificate")
        check_base_url("authority_base_url", self.authority_base_url)
        check_base_url("graph_base_url", self.graph_base_url)

    @property
    def graph_root(self) -> str:
        return self.graph_base_url.rstrip("/")
