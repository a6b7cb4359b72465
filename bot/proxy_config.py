"""The model proxy's configuration: its upstreams (an OpenAI-compatible one, and the
"OpenRouter via fal" route) and its bounds (body sizes, calls in flight, retention).

Apart from :mod:`bot.model_proxy` because ``bot/`` builds it from the settings
(:mod:`bot.assembly`) and tests and the bench name upstreams, none of which needs the
proxy's handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from adapters.llm import HttpUpstream
from engine.errors import ConfigError


@dataclass(frozen=True)
class UpstreamConfig:
    """One OpenAI-compatible upstream. ``provider`` is what the WPC's ``Model:Provider``
    must name and what receipts record."""

    provider: str
    base_url: str  # e.g. http://127.0.0.1:8000/v1 ; the proxy posts to {base_url}/chat/completions
    api_key: str = field(default="", repr=False)
    auth_scheme: str = "Bearer"  # "Key" for the fal OpenRouter router
    read_timeout_seconds: float = 120.0

    def __post_init__(self) -> None:
        if not self.provider:
            raise ConfigError("an upstream needs a provider name")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream {self.provider}: base_url must be http(s)")
        if self.auth_scheme not in ("Bearer", "Key"):
            raise ConfigError(f"upstream {self.provider}: auth_scheme is Bearer or Key")

    def build(self) -> HttpUpstream:
        return HttpUpstream(
            self.base_url,
            self.api_key,
            scheme=self.auth_scheme,
            read_timeout=self.read_timeout_seconds,
        )


def fal_openrouter(base_url: str, key: str, provider: str = "openrouter") -> UpstreamConfig:
    """The "OpenRouter via fal" route: the fal OpenRouter router URL and a fal key."""
    return UpstreamConfig(provider, base_url, key, auth_scheme="Key")


@dataclass(frozen=True)
class ProxyConfig:
    upstream: UpstreamConfig | None = None  # None: the embedded scripted model, in-process
    openrouter: UpstreamConfig | None = None  # models named openrouter/<model> go here
    redact: tuple[str, ...] = field(default=(), repr=False)  # literal secrets
    retention: timedelta = timedelta(days=30)  # how long exact bodies are kept
    gateway_id: str = "breakglass-model-proxy"
    max_request_bytes: int = 1024 * 1024
    max_response_bytes: int = 8 * 1024 * 1024
    # Calls in flight (each may buffer both limits above): for one job, and in all.
    max_calls_per_job: int = 4
    max_calls: int = 16

    def __post_init__(self) -> None:
        if any(not isinstance(s, str) or not s for s in self.redact):
            raise ConfigError("redaction secrets must be non-empty strings")
        if self.retention <= timedelta(0):
            raise ConfigError("exchange retention must be positive")
        if self.max_calls_per_job < 1 or self.max_calls < 1:
            raise ConfigError("the proxy's bounds on calls in flight must be at least 1")

    def keys(self) -> tuple[str, ...]:
        """The upstream keys the proxy presents (withheld from every answer)."""
        upstreams = (self.upstream, self.openrouter)
        return tuple(u.api_key for u in upstreams if u is not None and u.api_key)
