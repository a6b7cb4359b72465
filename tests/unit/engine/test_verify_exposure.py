"""The secret search over kept model exchanges: forms of the secret, streams, and bytes
that do not match their receipt."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.encoding import sha256_b64u
from engine.errors import InputError
from engine.ports import ModelExchange
from engine.verify.exposure import answer

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SECRET = 'pa"ss\u00e9-42'


def call(n: int, request: bytes, response: bytes) -> tuple[dict[str, Any], ModelExchange]:
    receipt = {
        "payload_hash_b64u": f"hash{n}",
        "payload": {
            "receipt_id": f"gw_{n}",
            "timestamp": "2026-11-25T09:00:00.000Z",
            "provider": "scripted",
            "model": "m",
            "request_hash_b64u": sha256_b64u(request),
            "response_hash_b64u": sha256_b64u(response),
        },
    }
    return receipt, ModelExchange(f"gw_{n}", "job-1", request, response, AT)


def stream(*pieces: str) -> bytes:
    events = [{"choices": [{"delta": {"content": p}}]} for p in pieces]
    return (
        b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n"
    )


def test_the_secret_is_found_json_escaped_in_a_request() -> None:
    body = json.dumps({"messages": [{"content": f"use {SECRET}"}]}).encode()  # ascii-escaped
    receipt, exchange = call(1, body, b"{}")
    result = answer("job-1", SECRET.encode(), [receipt], [exchange])
    assert result.verdict == "seen"
    assert result.calls[0].where == ("sent",)


def test_a_secret_split_across_stream_chunks_is_found() -> None:
    receipt, exchange = call(1, b"{}", stream(SECRET[:3], SECRET[3:]))
    assert SECRET.encode() not in exchange.response_body
    result = answer("job-1", SECRET.encode(), [receipt], [exchange])
    assert result.calls[0].where == ("received",)


def test_bytes_that_do_not_match_their_receipt_prove_nothing() -> None:
    receipt, exchange = call(1, b"{}", b"{}")
    forged = ModelExchange("gw_1", "job-1", b'{"x": 1}', b"{}", AT)
    result = answer("job-1", SECRET.encode(), [receipt], [forged])
    assert [c.status for c in result.calls] == ["mismatch"]
    assert result.verdict == "unknown"
    assert answer("job-1", SECRET.encode(), [receipt], [exchange]).verdict == "not_seen"


def test_a_too_short_secret_is_refused() -> None:
    with pytest.raises(InputError):
        answer("job-1", b"ab\n", [], [])
