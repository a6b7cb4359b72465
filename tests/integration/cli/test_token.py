"""``breakglass token issue|verify|revoke``: the revocation lands in the store, durably."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.store import SqlStore, sqlite_url
from bot.keys import load_keys
from engine.cst import parse_token
from engine.envelope import verify_envelope
from engine.ports import JobUpdate, Revocation, TokenRecord
from tests.integration.cli.conftest import Cli, Signed, assert_one_line_error


def claims(home: Path, token: str) -> Any:
    return parse_token(token, {load_keys(home).issuer.did})


def stored_revocation(url: str, jti: str) -> Revocation | None:
    async def read() -> Revocation | None:
        async with await SqlStore.open(url) as store:
            return await store.revocation(jti)

    return asyncio.run(read())


def issue(cli: Cli, signed: Signed, *extra: str) -> str:
    result = cli("token", "issue", "--policy", str(signed.envelope), "--job", signed.job, *extra)
    assert result.code == 0, result.err
    return result.out.strip()


def test_issue_verify_revoke_then_verify_fails(
    sign: Callable[[str], Signed], keyed: Cli, home: Path
) -> None:
    signed = sign("job-1")
    token = issue(keyed, signed)
    jti = claims(home, token)["jti"]
    check = ("token", "verify", token, "--policy", str(signed.envelope), "--job", "job-1")
    ok = keyed(*check)
    assert (ok.code, ok.out.split()[:2]) == (0, ["VALID", jti])
    revoked = keyed("token", "revoke", jti, "--job", "job-1", "--reason", "incident over")
    assert (revoked.code, revoked.out.split()[:2]) == (0, ["revoked", jti])
    again = keyed("token", "revoke", jti)
    assert (again.code, again.out.split()[:2]) == (0, ["already", "revoked"])
    refused = keyed(*check)
    assert refused.code == 1
    assert refused.out.startswith("INVALID: TOKEN_REVOKED")


def test_revocation_is_a_signed_durable_record(
    sign: Callable[[str], Signed], keyed: Cli, home: Path
) -> None:
    token = issue(keyed, sign("job-1"))
    jti = claims(home, token)["jti"]
    assert keyed("token", "revoke", jti, "--reason", "done").code == 0
    stored = stored_revocation(sqlite_url(home), jti)
    assert stored is not None
    assert stored.job_id == "unknown"
    record = verify_envelope(
        stored.record,
        expected_types={"breakglass_revocation"},
        allowed_signers={load_keys(home).issuer.did},
    )
    assert (record.payload["jti"], record.payload["reason"]) == (jti, "done")


def test_revoke_fills_the_record_from_a_stored_token(keyed: Cli, home: Path) -> None:
    token_claims = {
        "jti": "cst_stored",
        "mission_id": "job-9",
        "policy_hash_b64u": "P" * 43,
        "token_scope_hash_b64u": "S" * 43,
    }

    async def seed() -> None:
        async with await SqlStore.open(sqlite_url(home)) as store:
            at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
            record = TokenRecord(
                "cst_stored", "job-9", "agent", token_claims, at, at + timedelta(minutes=30)
            )
            await store.create_job(
                JobUpdate("job-9", 0, "running", {"job_id": "job-9"}, tokens=[record])
            )

    asyncio.run(seed())
    assert keyed("token", "revoke", "cst_stored", "--job", "job-9").code == 0
    stored = stored_revocation(sqlite_url(home), "cst_stored")
    assert stored is not None
    assert stored.job_id == "job-9"
    assert stored.record["payload"]["policy_hash_b64u"] == "P" * 43
    assert stored.record["payload"]["token_scope_hash_b64u"] == "S" * 43


def test_database_url_is_honoured(
    sign: Callable[[str], Signed], keyed: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("BREAKGLASS_DATABASE_URL", sqlite_url(other))
    assert keyed("token", "revoke", "cst_somewhere").code == 0
    assert stored_revocation(sqlite_url(other), "cst_somewhere") is not None


def test_ttl_within_and_above_the_policy_maximum(
    sign: Callable[[str], Signed], keyed: Cli, home: Path
) -> None:
    signed = sign("job-1")
    token = issue(keyed, signed, "--ttl-seconds", "60")
    body = claims(home, token)
    assert body["exp"] - body["iat"] == 60
    default = claims(home, issue(keyed, signed))
    assert default["exp"] - default["iat"] == 30 * 60
    too_long = keyed(
        "token",
        "issue",
        "--policy",
        str(signed.envelope),
        "--job",
        "job-1",
        "--ttl-seconds",
        "1801",
    )
    assert_one_line_error(too_long, 2)
    assert "policy maximum" in too_long.err


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t, s, o: (t, s, "job-2"), "TOKEN_WRONG_JOB"),
        (lambda t, s, o: (t, o, "job-1"), "TOKEN_WRONG_POLICY"),
        (lambda t, s, o: ("not.a.token", s, "job-1"), "TOKEN_MALFORMED"),
        (lambda t, s, o: (t[:-4] + "AAAA", s, "job-1"), "TOKEN_SIGNATURE_INVALID"),
    ],
)
def test_verify_gives_the_precise_reason(
    sign: Callable[[str], Signed],
    keyed: Cli,
    mutate: Callable[[str, Path, Path], tuple[str, Path, str]],
    reason: str,
) -> None:
    signed, other = sign("job-1"), sign("job-2")
    token, policy, job = mutate(issue(keyed, signed), signed.envelope, other.envelope)
    result = keyed("token", "verify", token, "--policy", str(policy), "--job", job)
    assert result.code == 1
    assert result.out.split(":")[:2] == ["INVALID", f" {reason}"]


def test_issue_refuses_a_policy_not_signed_by_our_publisher(
    sign: Callable[[str], Signed], keyed: Cli, tmp_path: Path
) -> None:
    envelope = json.loads(sign("job-1").envelope.read_text())
    envelope["signature_b64u"] = envelope["signature_b64u"][::-1]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    result = keyed("token", "issue", "--policy", str(forged), "--job", "job-1")
    assert_one_line_error(result, 1)
    assert "SIGNATURE_INVALID" in result.err


@pytest.mark.parametrize("jti", ["has space", "x" * 129, "", "semi;colon"])
def test_revoke_refuses_a_malformed_jti(keyed: Cli, jti: str) -> None:
    assert_one_line_error(keyed("token", "revoke", jti), 2)


@pytest.mark.parametrize("job", ["j" * 129, "a\nb", "", ".leading-dot"])
def test_revoke_refuses_a_malformed_job_and_stores_nothing(keyed: Cli, job: str) -> None:
    result = keyed("token", "revoke", "cst_q", "--job", job)
    assert_one_line_error(result, 2)
    assert "--job" in result.err
    after = keyed("token", "revoke", "cst_q")  # the first one stored nothing
    assert (after.code, after.out.split()[:2]) == (0, ["revoked", "cst_q"])
