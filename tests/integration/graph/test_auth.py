"""Real MSAL against the simulated token endpoint: secret, certificate, and refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from adapters.graph import CertificateCredential, GraphTools
from adapters.graph.auth import TokenSource
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.graph.simulated.core import TOKEN_LIFETIME
from engine import catalog
from engine.errors import GraphError, describe
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import MemorySnapshots, read_args, write_args


def make_certificate(tmp_path: Path) -> tuple[Path, bytes, str]:
    """A private key file, its self-signed certificate (PEM) and the SHA-1 thumbprint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "breakglass-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path = tmp_path / "app-key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    thumbprint = cert.fingerprint(hashes.SHA1()).hex()
    return key_path, cert.public_bytes(serialization.Encoding.PEM), thumbprint


async def test_bad_client_secret_is_a_typed_error_without_the_secret(
    sim: SimulatedTenant, clock: ManualClock
) -> None:
    before = sim.state()
    wrong = "wrong-secret-Zx9!-do-not-leak"
    config = config_for(sim, client_secret=wrong)
    async with GraphTools(config, MemorySnapshots(), clock=clock.now) as tools:
        with pytest.raises(GraphError) as caught:
            await tools.call(catalog.WRITE_ROLE, write_args())
    err = caught.value
    assert (err.code, err.status) == ("invalid_client", 401)
    assert "AADSTS7000215" in err.message
    for text in (str(err), describe(err), repr(err), err.message):
        assert wrong not in text
        assert sim.client_secret not in text
    assert "\n" not in describe(err)
    assert wrong not in repr(config)
    assert [e.path for e in sim.requests_log if e.path.startswith("/v1.0")] == []
    assert [e.status for e in sim.requests_log if e.path.endswith("/token")] == [401]
    assert sim.state() == before


async def test_unknown_tenant_fails_discovery_with_a_typed_error(
    sim: SimulatedTenant, clock: ManualClock
) -> None:
    before = sim.state()
    config = config_for(sim, tenant_id="00000000-0000-0000-0000-0000000000ff")
    async with GraphTools(config, MemorySnapshots(), clock=clock.now) as tools:
        with pytest.raises(GraphError) as caught:
            await tools.call(
                catalog.READ_ROLE, read_args("absent") | {"tenant_id": config.tenant_id}
            )
    assert caught.value.code == "AuthorityUnavailable"
    assert sim.client_secret not in str(caught.value)
    assert sim.state() == before


async def test_a_token_is_kept_until_msal_would_renew_it_and_dropped_when_refused(
    sim: SimulatedTenant,
) -> None:
    now = [0.0]
    source = TokenSource(config_for(sim), monotonic=lambda: now[0])

    def fetched() -> int:
        return sum(e.path.endswith("/token") and e.status == 200 for e in sim.requests_log)

    first = await source.token()
    await TokenSource(config_for(sim)).forget(first)  # gone from MSAL's (shared) cache
    lifetime = int(TOKEN_LIFETIME.total_seconds())
    now[0] = lifetime / 2 - 1
    assert (await source.token(), fetched()) == (first, 1)  # kept: MSAL was not asked
    now[0] = lifetime / 2
    second = await source.token()
    assert (second != first, fetched()) == (True, 2)
    await source.forget(second)  # Graph refused it
    third = await source.token()
    assert (third != second, fetched()) == (True, 3)


async def test_certificate_credential(
    sim: SimulatedTenant, clock: ManualClock, tmp_path: Path
) -> None:
    key_path, cert_pem, thumbprint = make_certificate(tmp_path)
    sim.register_certificate(cert_pem)
    credential = CertificateCredential(key_path, thumbprint)
    config = config_for(sim, client_secret=None, certificate=credential)
    async with GraphTools(config, MemorySnapshots(), clock=clock.now) as tools:
        result = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert result.body["verified"] is True


async def test_unregistered_certificate_is_refused(
    sim: SimulatedTenant, clock: ManualClock, tmp_path: Path
) -> None:
    before = sim.state()
    key_path, _, thumbprint = make_certificate(tmp_path)
    config = config_for(
        sim, client_secret=None, certificate=CertificateCredential(key_path, thumbprint)
    )
    async with GraphTools(config, MemorySnapshots(), clock=clock.now) as tools:
        with pytest.raises(GraphError) as caught:
            await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert caught.value.code == "invalid_client"
    assert "AADSTS700027" in caught.value.message
    assert [e.status for e in sim.requests_log if e.path.endswith("/token")] == [401]
    assert sim.state() == before


async def test_unreadable_key_file_is_a_typed_error(
    sim: SimulatedTenant, clock: ManualClock, tmp_path: Path
) -> None:
    before = sim.state()
    credential = CertificateCredential(tmp_path / "missing.pem", "ab" * 20)
    config = config_for(sim, client_secret=None, certificate=credential)
    async with GraphTools(config, MemorySnapshots(), clock=clock.now) as tools:
        with pytest.raises(GraphError) as caught:
            await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert caught.value.code == "CertificateUnreadable"
    assert sim.requests_log == []
    assert sim.state() == before
