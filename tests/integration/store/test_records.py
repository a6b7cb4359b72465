"""Write-once records: policies, idempotency keys, revocations, snapshots."""

from __future__ import annotations

from datetime import timedelta

from adapters.store import SqlStore
from tests.integration.store.conftest import T0, revocation

ENVELOPE = {"envelope_version": "1", "payload": {"n": 1}, "signature_b64u": "sig"}


async def test_policy_put_is_idempotent_and_first_wins(store: SqlStore) -> None:
    assert await store.get_policy("hash-1") is None
    assert await store.put_policy("hash-1", ENVELOPE) is False
    assert await store.put_policy("hash-1", {**ENVELOPE, "signature_b64u": "other"}) is True
    assert await store.get_policy("hash-1") == ENVELOPE


async def test_claim_key_once(store: SqlStore) -> None:
    assert await store.idempotent_result("evt-1") is None
    assert await store.claim_key("evt-1", {"status": "ok"}, T0) is True
    assert await store.claim_key("evt-1", {"status": "again"}, T0) is False
    assert await store.idempotent_result("evt-1") == {"status": "ok"}


async def test_revoke_is_idempotent(store: SqlStore) -> None:
    assert await store.is_revoked("jti-1") is False
    assert await store.revocation("jti-1") is None
    assert await store.revoke(revocation("jti-1", "job-1", at=T0)) is True
    assert await store.revoke(revocation("jti-1", "job-1", at=T0 + timedelta(hours=1))) is False
    assert await store.is_revoked("jti-1") is True
    assert await store.revocation("jti-1") == revocation("jti-1", "job-1", at=T0)


async def test_revoke_needs_no_stored_job_or_token(store: SqlStore) -> None:
    # Revoking is the safe direction: it must work for any jti the CLI is handed.
    assert await store.revoke(revocation("unknown-jti", "unknown-job")) is True


async def test_snapshot_first_write_wins(store: SqlStore) -> None:
    original = {"conditions": {"users": {"excludeGroups": []}}, "etag": 1}
    assert await store.load_snapshot("ca:policy-1") is None
    assert await store.save_snapshot("ca:policy-1", original) == original
    retried = {"conditions": {"users": {"excludeGroups": ["g-1"]}}, "etag": 2}
    assert await store.save_snapshot("ca:policy-1", retried) == original
    assert await store.load_snapshot("ca:policy-1") == original
