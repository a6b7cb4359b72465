"""The one rule for where cleartext HTTP is allowed: loopback only.

Secrets (client credentials, bearer tokens, bot tokens) travel to every base URL an adapter is
configured with, so each one must be https unless it points at this machine (tests, fakes,
the simulated tenant).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from engine.errors import ConfigError


def is_loopback_http(url: str) -> bool:
    """True for ``http://`` to 127.0.0.0/8, ``::1`` or ``localhost``, and nothing else.

    The scheme and host compare case-insensitively (RFC 3986). A URL carrying userinfo is never
    loopback: ``http://127.0.0.1@evil.example`` reaches ``evil.example``, and other parsers
    disagree on such URLs. ``0.0.0.0`` is "every interface", not loopback. Does NOT check the
    port, the path or whether anything listens there.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or "@" in parts.netloc or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def check_base_url(name: str, url: str) -> None:
    """Raise ``ConfigError`` unless ``url`` is a plain URL over https, or http on loopback."""
    parts = urlsplit(url)
    if parts.query or parts.fragment or not parts.hostname:
        raise ConfigError(f"{name} must be a plain URL (a host, no query or fragment)")
    if parts.scheme != "https" and not is_loopback_http(url):
        raise ConfigError(f"{name} must use https (http is allowed only on loopback)")
