"""Configuration of the Microsoft Graph adapter: one frozen object, validated on construction.

Built by ``bot/`` from its settings; nothing here reads the environment. The secret is kept
out of ``repr`` so a logged config never shows it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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
    ca_interval: float = 1.0  # Conditional Access allows 1 request/s per tenant
    readback_attempts: int = 10  # polling bound while replication catches up
    readback_interval: float = 1.0
    write_attempts: int = 3  # resends allowed after a read-back proved a write absent

    def __post_init__(self) -> None:
        if min(self.max_attempts, self.readback_attempts, self.write_attempts) < 1:
            raise ConfigError("retry attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.ca_interval, self.readback_interval) < 0:
            raise ConfigError("retry delays must not be negative")
        if self.total_budget <= 0 or self.request_timeout <= 0:
            raise ConfigError("retry budget and request timeout must be positive")


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

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.client_id:
            raise ConfigError("tenant_id and client_id are required")
        if (self.client_secret is None) == (self.certificate is None):
            raise ConfigError("give exactly one credential: client_secret or certificate")
        _check_base_url("authority_base_url", self.authority_base_url)
        _check_base_url("graph_base_url", self.graph_base_url)

    @property
    def graph_root(self) -> str:
        return self.graph_base_url.rstrip("/")


def is_loopback_http(url: str) -> bool:
    """True for ``http://`` to a loopback address: the only place cleartext is allowed."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _check_base_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.query or parts.fragment or not parts.hostname:
        raise ConfigError(f"{name} must be a plain base URL")
    # Credentials and bearer tokens travel to these hosts: cleartext only on loopback.
    if parts.scheme != "https" and not is_loopback_http(url):
        raise ConfigError(f"{name} must use https (http is allowed only on loopback)")
