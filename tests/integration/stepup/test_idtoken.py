"""The ID token checks against the simulated tenant's live JWKS: a token for another
audience, issuer or tenant, an expired one, one signed by a key the tenant does not
publish, or not RS256 is refused naming the check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.entra_signin import SignInRejected
from adapters.entra_signin.idtoken import JwksKeys, verify_id_token
from adapters.graph.simulated import SimulatedTenant
from adapters.graph.simulated.clock import ManualClock
from tests.integration.stepup.conftest import BOB
from tests.support.engine_sim import T0


@pytest.fixture
async def tenant() -> AsyncIterator[SimulatedTenant]:
    async with SimulatedTenant(clock=ManualClock(T0)) as sim:
        yield sim


def claims_for(tenant: SimulatedTenant, **changes: Any) -> dict[str, Any]:
    now = int(T0.timestamp())
    base = {
        "iss": tenant.signin_issuer,
        "aud": tenant.client_id,
        "tid": tenant.tenant_id,
        "oid": BOB,
        "sub": BOB,
        "nonce": "the-nonce",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "acrs": ["c1"],
        "amr": ["pwd", "mfa"],
    }
    return base | changes


async def check(tenant: SimulatedTenant, token: str) -> None:
    keys = JwksKeys(f"{tenant.base_url}/{tenant.tenant_id}/discovery/v2.0/keys")
    await verify_id_token(
        token,
        keys,
        issuer=tenant.signin_issuer,
        audience=tenant.client_id,
        tenant_id=tenant.tenant_id,
        nonce="the-nonce",
        now=T0 + timedelta(seconds=5),
    )


async def test_a_good_token_passes(tenant: SimulatedTenant) -> None:
    await check(tenant, tenant.signin.sign(claims_for(tenant)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"aud": "00000000-0000-0000-0000-0000000000ff"}, "another audience"),
        ({"iss": "https://login.example/other/v2.0"}, "another issuer"),
        ({"tid": "00000000-0000-0000-0000-0000000000ee"}, "another tenant"),
        ({"nonce": "someone-elses"}, "nonce"),
        ({"exp": int((T0 - timedelta(hours=1)).timestamp())}, "expired"),
        ({"iat": int((T0 + timedelta(hours=1)).timestamp())}, "not yet valid"),
    ],
)
async def test_a_token_that_does_not_fit_is_refused(
    tenant: SimulatedTenant, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SignInRejected, match=message):
        await check(tenant, tenant.signin.sign(claims_for(tenant, **changes)))


async def test_a_token_signed_by_an_unpublished_key_is_refused(tenant: SimulatedTenant) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims_for(tenant), other, algorithm="RS256", headers={"kid": tenant.signin.kid}
    )
    with pytest.raises(SignInRejected, match="failed verification"):
        await check(tenant, forged)


async def test_a_token_not_rs256_is_refused(tenant: SimulatedTenant) -> None:
    forged = jwt.encode(claims_for(tenant), "a-shared-secret-of-32-bytes-long!", algorithm="HS256")
    with pytest.raises(SignInRejected, match="RS256"):
        await check(tenant, forged)


async def test_a_token_with_an_unknown_kid_is_refused(tenant: SimulatedTenant) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims_for(tenant), other, algorithm="RS256", headers={"kid": "nope"})
    with pytest.raises(SignInRejected, match="no signing key"):
        await check(tenant, forged)
