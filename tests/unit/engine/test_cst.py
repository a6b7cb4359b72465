from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.cst import (
    CLOCK_SKEW_SECONDS,
    GATEWAY_AUDIENCE,
    PROXY_AUDIENCE,
    TokenKind,
    issue_token,
    revocation_record,
    sign_token,
    token_scope_hash,
    verify_token,
)
from engine.did import Signer
from engine.envelope import verify_envelope
from engine.errors import InvalidToken, TemplateError
from engine.wpc import Policy, build_wpc
from tests.support.shared import assert_valid
from tests.unit.engine.test_wpc import CA, NOW, PUBLISHER, ROLE

ISSUER = Signer.from_seed(b"i" * 32)
AGENT = Signer.from_seed(b"a" * 32)
POLICY = Policy.from_payload(build_wpc(ROLE, PUBLISHER.did))
WINDOW_END = NOW + timedelta(minutes=30)


def issue(kind: str = TokenKind.AGENT, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "job_id": "job-1",
        "kind": kind,
        "issuer": ISSUER,
        "agent_did": AGENT.did,
        "now": NOW,
        "window_end": WINDOW_END,
        "jti": "cst_test_jti",
        "nonce": "test-nonce",
    }
    return issue_token(POLICY, **(args | kw))


def reason(token: str, *, revoked: frozenset[str] = frozenset(), **kw: Any) -> str:
    args: dict[str, Any] = {
        "trusted_issuers": {ISSUER.did},
        "now": NOW,
        "job_id": "job-1",
        "policy_hash_b64u": POLICY.policy_hash_b64u,
        "is_revoked": revoked.__contains__,
    }
    with pytest.raises(InvalidToken) as err:
        verify_token(token, **(args | kw))
    assert str(err.value) == "invalid token"  # opaque to the presenter
    return err.value.reason


def verify(token: str, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "trusted_issuers": {ISSUER.did},
        "now": NOW,
        "job_id": "job-1",
        "policy_hash_b64u": POLICY.policy_hash_b64u,
        "is_revoked": lambda jti: False,
    }
    return verify_token(token, **(args | kw))


def test_claims_validate_against_the_reference_schema() -> None:
    for kind in (TokenKind.AGENT, TokenKind.ROLLBACK):
        assert_valid("scoped_token_claims.v1.json", issue(kind).claims)


def test_pyjwt_agrees_with_our_verification() -> None:
    issued = issue()
    key = Ed25519PublicKey.from_public_bytes(ISSUER.public_key)
    claims = jwt.decode(
        issued.token,
        key,
        algorithms=["EdDSA"],
        audience=GATEWAY_AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == dict(issued.claims)
    assert verify(issued.token).jti == issued.jti
    assert jwt.get_unverified_header(issued.token) == {
        "alg": "EdDSA",
        "kid": ISSUER.did,
        "typ": "JWT",
    }


def test_ttl_is_the_policy_maximum_and_never_above() -> None:
    issued = issue()
    assert issued.claims["exp"] - issued.claims["iat"] == 30 * 60
    with pytest.raises(TemplateError, match="policy maximum"):
        issue(ttl_seconds=30 * 60 + 1)
    short = issue(window_end=NOW + timedelta(minutes=5))
    assert short.claims["exp"] - short.claims["iat"] == 5 * 60
    with pytest.raises(TemplateError, match="beyond the window"):
        issue(window_end=NOW + timedelta(minutes=5), ttl_seconds=600)


def test_rollback_token_cannot_write_or_call_the_model() -> None:
    scope = set(issue(TokenKind.ROLLBACK).claims["scope"])
    assert not any("write_role" in s for s in scope)
    assert "model:invoke" not in scope
    assert (
        reason(issue(TokenKind.ROLLBACK).token, audience=PROXY_AUDIENCE) == "TOKEN_WRONG_AUDIENCE"
    )


def test_token_for_another_job_or_policy_is_refused() -> None:
    token = issue().token
    assert reason(token, job_id="job-2") == "TOKEN_WRONG_JOB"
    other = Policy.from_payload(build_wpc(CA, PUBLISHER.did))
    assert reason(token, policy_hash_b64u=other.policy_hash_b64u) == "TOKEN_WRONG_POLICY"
    with pytest.raises(TemplateError, match="another job"):
        issue(job_id="job-2")


def test_expiry_with_and_without_skew() -> None:
    token = issue().token
    end = NOW + timedelta(minutes=30)
    assert verify(token, now=end + timedelta(seconds=CLOCK_SKEW_SECONDS)).jti
    assert reason(token, now=end + timedelta(seconds=CLOCK_SKEW_SECONDS + 1)) == "TOKEN_EXPIRED"


def test_not_yet_valid() -> None:
    token = issue().token
    early = NOW - timedelta(seconds=CLOCK_SKEW_SECONDS + 1)
    assert reason(token, now=early) == "TOKEN_NOT_YET_VALID"


def test_revoked_by_jti_also_when_re_encoded_or_re_minted() -> None:
    issued = issue()
    revoked = frozenset({issued.jti})
    assert reason(issued.token, revoked=revoked) == "TOKEN_REVOKED"
    head, body, sig = issued.token.split(".")
    padded = f"{head}.{body}.{sig}=="
    assert reason(padded, revoked=revoked) in {"TOKEN_MALFORMED", "TOKEN_REVOKED"}
    # Same jti, different token string (new nonce, re-signed): still revoked.
    claims = dict(issued.claims) | {"nonce": "another"}
    assert reason(sign_token(claims, ISSUER), revoked=revoked) == "TOKEN_REVOKED"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c | {"scope": [*c["scope"], "tool:execute:run_shell"]},
            "TOKEN_SCOPE_HASH_MISMATCH",
        ),
        (lambda c: c | {"token_version": "2"}, "TOKEN_MALFORMED"),
        (lambda c: {k: v for k, v in c.items() if k != "jti"}, "TOKEN_MALFORMED"),
        (lambda c: c | {"admin": True}, "TOKEN_MALFORMED"),
    ],
)
def test_claims_edited_and_re_signed_by_the_issuer_are_still_checked(
    mutate: Any, expected: str
) -> None:
    claims = mutate(dict(issue().claims))
    assert reason(sign_token(claims, ISSUER)) == expected


def test_forged_and_untrusted_tokens() -> None:
    issued = issue()
    mallory = Signer.generate()
    assert reason(sign_token(issued.claims, mallory)) == "TOKEN_UNTRUSTED_ISSUER"
    assert reason(issued.token, trusted_issuers={mallory.did}) == "TOKEN_UNTRUSTED_ISSUER"
    head, body, sig = issued.token.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert reason(f"{head}.{body}.{flipped}") == "TOKEN_SIGNATURE_INVALID"
    for junk in ("", "a.b", "a.b.c.d", "x" * 9000, None, 42):
        assert reason(junk) == "TOKEN_MALFORMED"  # type: ignore[arg-type]


def test_scope_hash_ignores_order_duplicates_and_volatile_claims() -> None:
    claims = dict(issue().claims)
    shuffled = claims | {"scope": list(reversed(claims["scope"])) * 2, "jti": "x", "exp": 1}
    assert token_scope_hash(shuffled) == claims["token_scope_hash_b64u"]


def test_revocation_record_is_signed_and_names_the_jti() -> None:
    issued = issue()
    record = revocation_record(issued.claims, "kill", ISSUER, NOW)
    verified = verify_envelope(
        record, expected_types={"breakglass_revocation"}, allowed_signers={ISSUER.did}
    )
    assert verified.payload["jti"] == issued.jti
    assert issued.token not in str(record)


def test_issuing_is_deterministic_and_uses_the_given_jti_and_nonce() -> None:
    first, second = issue(), issue()
    assert first.token == second.token  # same inputs, same signed token (ADR 0004)
    assert (first.claims["jti"], first.claims["nonce"]) == ("cst_test_jti", "test-nonce")
    other = issue(jti="cst_other", nonce="n2")
    assert verify(other.token).jti == "cst_other"
    assert other.claims["token_scope_hash_b64u"] == first.claims["token_scope_hash_b64u"]
