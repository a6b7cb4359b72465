"""``POST /v1/wpc`` and ``GET /v1/wpc/{hash}`` over real HTTP: every refusal is typed, in the
deny shape, and leaves the store empty."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from adapters.store import SqlStore
from bot.registry import MAX_BODY_BYTES
from engine.did import did_from_public_key
from engine.envelope import sign_envelope
from engine.wpc import policy_hash, sign_wpc
from tests.integration.registry.conftest import (
    NOW,
    OUTSIDER,
    PUBLISHER,
    envelope,
    payload,
    policy_rows,
    registry_app,
    serve,
)

Client = TestClient[web.Request, web.Application]
SMALL_ORDER_DID = did_from_public_key(bytes([1]) + bytes(31))  # the identity point


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


async def post(http: Client, body: bytes | AsyncIterator[bytes]) -> tuple[int, Any, str]:
    response = await http.post("/v1/wpc", data=body, headers={"Content-Type": "application/json"})
    text = await response.text()
    return response.status, json.loads(text), text


def assert_denied(status: int, body: Any, text: str, want_status: int, want_code: str) -> None:
    assert (status, body["error"]["code"]) == (want_status, want_code), body
    assert body["ok"] is False
    assert set(body) == {"ok", "error"}
    assert isinstance(body["error"]["message"], str)
    assert "Traceback" not in text


async def assert_nothing_stored(store: SqlStore, db: Path, sent: Any) -> None:
    assert policy_rows(db) == 0
    if isinstance(sent, dict) and isinstance(sent.get("payload"), dict):
        assert await store.get_policy(policy_hash(sent["payload"])) is None
        assert await store.get_policy(str(sent.get("payload_hash_b64u"))) is None


async def test_publish_then_fetch_rehashes(http: Client, store: SqlStore) -> None:
    sent = envelope()
    status, body, _ = await post(http, dumps(sent))
    assert status == 201
    assert body == {"policy_hash_b64u": policy_hash(sent["payload"]), "existed": False}
    response = await http.get(f"/v1/wpc/{body['policy_hash_b64u']}")
    assert response.status == 200
    served = await response.json()
    assert served == sent
    assert policy_hash(served["payload"]) == body["policy_hash_b64u"]
    assert await store.get_policy(body["policy_hash_b64u"]) == sent


async def test_publish_is_idempotent_and_the_first_copy_wins(http: Client) -> None:
    first = envelope()
    resigned = sign_wpc_later(first)
    assert (await post(http, dumps(first)))[:2] == (
        201,
        {"policy_hash_b64u": first["payload_hash_b64u"], "existed": False},
    )
    for again in (first, resigned):
        status, body, _ = await post(http, dumps(again))
        assert (status, body["existed"]) == (200, True)
    served = await (await http.get(f"/v1/wpc/{first['payload_hash_b64u']}")).json()
    assert served == first


def sign_wpc_later(sent: dict[str, Any]) -> dict[str, Any]:
    return sign_wpc(sent["payload"], PUBLISHER, NOW + timedelta(minutes=5))


# ----------------------------------------------------------------- refused inputs


def _tampered() -> Any:
    sent = envelope()
    sent["payload"]["metadata"]["breakglass"]["requester"] = "u-mallory"
    return sent


def _swapped_keep_hash() -> Any:
    # Another policy's payload under this one's hash and (valid) signature.
    sent = envelope("job-1")
    sent["payload"] = envelope("job-2")["payload"]
    return sent


def _swapped_own_hash() -> Any:
    # Another policy's payload and hash under this one's signature.
    sent, other = envelope("job-1"), envelope("job-2")
    sent["payload"], sent["payload_hash_b64u"] = other["payload"], other["payload_hash_b64u"]
    return sent


def _changed(field: str, value: Any) -> Callable[[], Any]:
    def build() -> Any:
        return envelope() | {field: value}

    return build


def _signed_by_did(did: str) -> Any:
    return envelope() | {"signer_did": did}


def _not_a_wpc() -> Any:
    return sign_envelope("work_policy_contract", {"hello": "world"}, PUBLISHER, NOW)


def _oversized() -> Any:
    big = copy.deepcopy(payload())
    big["metadata"]["breakglass"]["padding"] = "x" * (65 * 1024)
    return sign_envelope("work_policy_contract", big, PUBLISHER, NOW)


REFUSED: dict[str, tuple[Callable[[], Any], int, str]] = {
    "tampered_payload": (_tampered, 400, "HASH_MISMATCH"),
    "swapped_payload_same_hash": (_swapped_keep_hash, 400, "HASH_MISMATCH"),
    "swapped_payload_own_hash": (_swapped_own_hash, 400, "SIGNATURE_INVALID"),
    "outsider_signer": (lambda: envelope(signer=OUTSIDER), 403, "SIGNER_NOT_ALLOWED"),
    "unknown_envelope_version": (
        _changed("envelope_version", "2"),
        400,
        "UNKNOWN_ENVELOPE_VERSION",
    ),
    "unknown_envelope_type": (
        _changed("envelope_type", "proof_bundle"),
        400,
        "UNKNOWN_ENVELOPE_TYPE",
    ),
    "unknown_algorithm": (_changed("algorithm", "ES256"), 400, "UNKNOWN_ALGORITHM"),
    "unknown_hash_algorithm": (_changed("hash_algorithm", "SHA-1"), 400, "UNKNOWN_HASH_ALGORITHM"),
    "extra_envelope_field": (_changed("note", "hi"), 400, "MALFORMED_ENVELOPE"),
    "not_an_object": (lambda: [], 400, "MALFORMED_ENVELOPE"),
    "not_a_wpc": (_not_a_wpc, 400, "SCHEMA_VALIDATION_FAILED"),
    "malformed_did_signer": (
        lambda: _signed_by_did("did:key:zNot-Base58!"),
        400,
        "INVALID_DID_FORMAT",
    ),
    "small_order_did_signer": (lambda: _signed_by_did(SMALL_ORDER_DID), 400, "INVALID_DID_FORMAT"),
    "policy_of_65_kib": (_oversized, 413, "PAYLOAD_TOO_LARGE"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_refused_envelope_stores_nothing(
    name: str, http: Client, store: SqlStore, db: Path
) -> None:
    build, want_status, want_code = REFUSED[name]
    sent = build()
    assert_denied(*await post(http, dumps(sent)), want_status, want_code)
    await assert_nothing_stored(store, db, sent)


RAW: dict[str, tuple[bytes, int, str]] = {
    "duplicate_keys": (
        b'{"envelope_version": "1", "envelope_version": "1", "payload": {}}',
        400,
        "INVALID_JSON",
    ),
    "nan": (b'{"envelope_version": "1", "payload": {"revision": NaN}}', 400, "INVALID_JSON"),
    "infinity": (b'{"payload": {"revision": -Infinity}}', 400, "INVALID_JSON"),
    "float": (b'{"payload": {"revision": 0.5}}', 400, "INVALID_JSON"),
    "not_utf8": (b'{"payload": "\xff\xfe"}', 400, "INVALID_JSON"),
    "empty": (b"", 400, "INVALID_JSON"),
    "truncated": (b'{"payload": {', 400, "INVALID_JSON"),
}


@pytest.mark.parametrize("name", sorted(RAW))
async def test_refused_bytes_store_nothing(
    name: str, http: Client, store: SqlStore, db: Path
) -> None:
    body, want_status, want_code = RAW[name]
    assert_denied(*await post(http, body), want_status, want_code)
    await assert_nothing_stored(store, db, None)


async def test_duplicate_keys_inside_a_valid_envelope_are_refused(
    http: Client, store: SqlStore, db: Path
) -> None:
    sent = envelope()
    text = json.dumps(sent)
    # The same key twice: one parser could keep the first, another the last.
    doubled = text.replace(
        '"requester": "u-alice"', '"requester": "u-mallory", "requester": "u-alice"'
    )
    assert doubled != text
    assert_denied(*await post(http, doubled.encode()), 400, "INVALID_JSON")
    await assert_nothing_stored(store, db, sent)


async def test_oversized_chunked_body_is_cut_off(http: Client, store: SqlStore, db: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1024 + 8):  # no Content-Length: read with a bound
            yield b" " * 1024

    assert_denied(*await post(http, chunks()), 413, "PAYLOAD_TOO_LARGE")
    await assert_nothing_stored(store, db, None)


async def test_small_order_did_is_refused_even_when_allowlisted(store: SqlStore, db: Path) -> None:
    sent = _signed_by_did(SMALL_ORDER_DID)
    async with serve(registry_app(store, {PUBLISHER.did, SMALL_ORDER_DID})) as http:
        assert_denied(*await post(http, dumps(sent)), 400, "INVALID_DID_FORMAT")
    await assert_nothing_stored(store, db, sent)


async def test_empty_allowlist_refuses_everything(store: SqlStore, db: Path) -> None:
    sent = envelope()
    async with serve(registry_app(store, set())) as http:
        assert_denied(*await post(http, dumps(sent)), 403, "SIGNER_NOT_ALLOWED")
    await assert_nothing_stored(store, db, sent)


# ------------------------------------------------------------------------- GET


async def test_unknown_hash_is_404(http: Client) -> None:
    response = await http.get(f"/v1/wpc/{policy_hash(payload())}")
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize("bad", ["abc", "A" * 44, "A" * 42 + "B", "A" * 42 + "%2B", "A" * 42 + "="])
async def test_malformed_hash_is_400(http: Client, bad: str) -> None:
    response = await http.get(f"/v1/wpc/{bad}")
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (400, "INVALID_POLICY_HASH")


async def test_corrupted_stored_envelope_is_never_served(
    http: Client, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = envelope()
    wanted = good["payload_hash_b64u"]
    corrupted = copy.deepcopy(good)
    corrupted["payload"]["metadata"]["breakglass"]["requester"] = "u-mallory"
    await store.put_policy(wanted, corrupted)  # as if the database row were edited
    with caplog.at_level(logging.ERROR, logger="bot.registry"):
        response = await http.get(f"/v1/wpc/{wanted}")
        text = await response.text()
    assert response.status == 500
    assert json.loads(text)["error"]["code"] == "HASH_MISMATCH"
    assert "u-mallory" not in text
    assert any(wanted in record.getMessage() for record in caplog.records)


async def test_stored_document_without_payload_is_never_served(
    http: Client, store: SqlStore
) -> None:
    wanted = policy_hash(payload())
    await store.put_policy(wanted, {"payload": "not an object"})
    response = await http.get(f"/v1/wpc/{wanted}")
    assert (response.status, (await response.json())["error"]["code"]) == (500, "HASH_MISMATCH")
