"""Redaction of configured secrets from a model request before it leaves the proxy.

Each occurrence of a secret in any string of the request becomes ``[REDACTED:<prefix>]``,
the prefix being the first characters of the secret's SHA-256 (base64url), so an auditor
holding the secret can tell which one was removed; the receipt records the full hashes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.encoding import sha256_b64u

PREFIX_CHARS = 12


@dataclass(frozen=True)
class Redaction:
    count: int  # occurrences replaced
    hashes: tuple[str, ...]  # sha256_b64u of each distinct secret found, sorted

    def metadata(self) -> dict[str, Any]:
        return {"redactions": self.count, "redaction_hashes": list(self.hashes)}


def placeholder(secret: str) -> str:
    return f"[REDACTED:{secret_hash(secret)[:PREFIX_CHARS]}]"


def secret_hash(secret: str) -> str:
    return sha256_b64u(secret.encode("utf-8"))


class _Redactor:
    def __init__(self, secrets: Sequence[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.count = 0
        self.found: set[str] = set()

    def text(self, value: str) -> str:
        for secret in self.secrets:
            hits = value.count(secret)
            if hits:
                self.count += hits
                self.found.add(secret_hash(secret))
                value = value.replace(secret, placeholder(secret))
        return value

    def walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.walk(item) for item in value]
        return value


def redact(value: Any, secrets: Sequence[str]) -> tuple[Any, Redaction]:
    """``value`` (parsed JSON) with every secret replaced in its string values."""
    redactor = _Redactor(secrets)
    cleaned = redactor.walk(value)
    return cleaned, Redaction(redactor.count, tuple(sorted(redactor.found)))
