""" "Did the model ever see secret X?", answered from the kept model exchanges.

Every model call has a signed gateway receipt hashing the exact bytes sent and received;
the proxy keeps those bytes for its retention period. A kept exchange is checked against its
receipt's hashes first (bytes that do not match their receipt prove nothing), then searched
for the secret as raw bytes, as it appears inside a JSON string, and (for a streamed answer)
in the text the stream's deltas add up to. A call whose bytes are gone (past retention, or
never stored) is reported as unknown, never as clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.encoding import sha256_b64u
from engine.errors import InputError
from engine.ports import ModelExchange

SENT, RECEIVED = "sent", "received"


@dataclass(frozen=True)
class CallFinding:
    """One receipted model call and what its kept bytes say about the secret."""

    receipt_id: str
    receipt_hash_b64u: str  # the signed receipt envelope's payload hash
    at: str
    route: str
    status: str  # contains | clean | absent (bytes gone) | mismatch (bytes not the receipt's)
    where: tuple[str, ...] = ()  # sent and/or received, when it contains the secret


@dataclass
class SecretAnswer:
    job_id: str
    calls: list[CallFinding] = field(default_factory=list)

    @property
    def seen(self) -> bool:
        return any(c.status == "contains" for c in self.calls)

    @property
    def unknown(self) -> list[CallFinding]:
        return [c for c in self.calls if c.status in ("absent", "mismatch")]

    @property
    def verdict(self) -> str:
        """seen | not_seen | unknown (not seen in what is kept, but some bytes are gone)."""
        if self.seen:
            return "seen"
        return "unknown" if self.unknown else "not_seen"

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "verdict": self.verdict,
            "model_calls": len(self.calls),
            "calls": [
                {
                    "receipt_id": c.receipt_id,
                    "receipt_hash_b64u": c.receipt_hash_b64u,
                    "at": c.at,
                    "route": c.route,
                    "status": c.status,
                    "where": list(c.where),
                }
                for c in self.calls
            ],
        }


def check_secret(secret: bytes) -> bytes:
    """A usable secret: one trailing newline (from a file or a pipe) is not part of it."""
    secret = secret[:-1] if secret.endswith(b"\n") else secret
    secret = secret[:-1] if secret.endswith(b"\r") else secret
    if len(secret) < 4:
        raise InputError("the secret is empty or shorter than 4 bytes: no useful answer")
    return secret


def answer(
    job_id: str,
    secret: bytes,
    receipts: Sequence[Mapping[str, Any]],
    exchanges: Iterable[ModelExchange],
) -> SecretAnswer:
    """``receipts`` are the job's signed gateway receipt envelopes, ``exchanges`` the kept
    bodies. Does NOT verify receipt signatures: the receipts come from the job's own chain."""
    kept = {e.receipt_id: e for e in exchanges}
    needles = _forms(check_secret(secret))
    result = SecretAnswer(job_id)
    for envelope in receipts:
        body = envelope["payload"]
        exchange = kept.get(str(body["receipt_id"]))
        status, where = _inspect(body, exchange, needles)
        result.calls.append(
            CallFinding(
                receipt_id=str(body["receipt_id"]),
                receipt_hash_b64u=str(envelope["payload_hash_b64u"]),
                at=str(body["timestamp"]),
                route=f"{body['provider']}:{body['model']}",
                status=status,
                where=where,
            )
        )
    return result


def _inspect(
    body: Mapping[str, Any], exchange: ModelExchange | None, needles: Sequence[bytes]
) -> tuple[str, tuple[str, ...]]:
    if exchange is None:
        return "absent", ()
    if (
        sha256_b64u(exchange.request_body) != body["request_hash_b64u"]
        or sha256_b64u(exchange.response_body) != body["response_hash_b64u"]
    ):
        return "mismatch", ()
    where = tuple(
        side
        for side, data in ((SENT, exchange.request_body), (RECEIVED, exchange.response_body))
        if _contains(data, needles)
    )
    return ("contains" if where else "clean"), where


def _forms(secret: bytes) -> list[bytes]:
    """The secret as bytes, and as a JSON string body (escaped either way)."""
    forms = {secret}
    try:
        text = secret.decode()
    except UnicodeDecodeError:
        return list(forms)
    for ascii_only in (True, False):
        forms.add(json.dumps(text, ensure_ascii=ascii_only)[1:-1].encode())
    return sorted(forms)


def _contains(data: bytes, needles: Sequence[bytes]) -> bool:
    if any(n in data for n in needles):
        return True
    streamed = _stream_text(data)
    return bool(streamed) and any(n in streamed for n in needles)


def _stream_text(data: bytes) -> bytes:
    """The text a server-sent-event stream's deltas add up to (a secret may be split)."""
    parts: list[str] = []
    for line in data.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        for choice in event.get("choices", []) if isinstance(event, dict) else []:
            delta = choice.get("delta", {}) if isinstance(choice, dict) else {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                parts.append(content)
    return "".join(parts).encode()
