"""Timestamps as clawsig writes them (``2026-02-12T00:00:00.000Z``). Time is always passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from engine.errors import InputError


def iso_ms(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z, like JavaScript's toISOString()."""
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_seconds_up(when: datetime) -> str:
    """RFC 3339 UTC to the second, rounded up: "at the latest" for an end in the tenant."""
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    utc = when.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: object) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset; anything else is an InputError."""
    if not isinstance(text, str) or not text or len(text) > 40:
        raise InputError("timestamp is not a string")
    return _parse_iso(str(text))  # str(): a str subclass is parsed as the plain string


@lru_cache(maxsize=4096)  # a bundle's checks read each timestamp several times
def _parse_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"not an RFC 3339 timestamp: {text[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise InputError("timestamp has no UTC offset")
    return parsed.astimezone(UTC)


def epoch(when: datetime) -> int:
    return int(when.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
