"""``RegistryClient`` against the real registry and against registries that lie."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.registry import RegistryClient
from adapters.store import SqlStore
from engine.errors import AdapterError, RegistryError, StrictJsonError, TooLarge, VerificationError
from engine.wpc import policy_hash
from tests.integration.registry.conftest import (
    OUTSIDER,
    PUBLISHER,
    Counter,
    envelope,
    registry_app,
    serve,
)


def lying_registry(answer: Any, status: int = 200) -> web.Application:
    """Answers every GET with ``answer`` (an envelope, or raw bytes), whatever was asked."""

    async def handler(_request: web.Request) -> web.Response:
        if isinstance(answer, bytes):
            return web.Response(body=answer, status=status, content_type="application/json")
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_get("/v1/wpc/{policy_hash_b64u}", handler)
    app.router.add_post("/v1/wpc", handler)
    return app


async def published(session: aiohttp.ClientSession, base: str, sent: dict[str, Any]) -> str:
    client = RegistryClient(base, {PUBLISHER.did}, session)
    assert await client.publish(sent) is False
    return str(sent["payload_hash_b64u"])


async def test_publish_fetch_verifies_and_caches(
    store: SqlStore, counter: Counter, session: aiohttp.ClientSession
) -> None:
    sent = envelope()
    async with serve(registry_app(store, {PUBLISHER.did}, counter)) as http:
        base = str(http.make_url(""))
        client = RegistryClient(base, {PUBLISHER.did}, session)
        assert await client.publish(sent) is False
        assert await client.publish(sent) is True
        wanted = sent["payload_hash_b64u"]
        before = counter.requests
        policy = await client.fetch(wanted)
        assert policy.policy_hash_b64u == wanted == policy_hash(policy.payload)
        assert policy.payload == sent["payload"]
        assert await client.fetch(wanted) is policy
        assert counter.requests == before + 1  # the second fetch came from the cache


async def test_signer_outside_the_allowlist_is_refused_and_not_cached(
    store: SqlStore, counter: Counter, session: aiohttp.ClientSession
) -> None:
    sent = envelope()
    async with serve(registry_app(store, {PUBLISHER.did}, counter)) as http:
        wanted = await published(session, str(http.make_url("")), sent)
        client = RegistryClient(str(http.make_url("")), {OUTSIDER.did}, session)
        for _ in range(2):
            with pytest.raises(VerificationError) as caught:
                await client.fetch(wanted)
            assert caught.value.code == "SIGNER_NOT_ALLOWED"
        assert counter.requests == 3  # publish + two fetches: a refusal is never cached


async def test_empty_allowlist_refuses_before_asking(
    store: SqlStore, counter: Counter, session: aiohttp.ClientSession
) -> None:
    async with serve(registry_app(store, {PUBLISHER.did}, counter)) as http:
        client = RegistryClient(str(http.make_url("")), set(), session)
        with pytest.raises(VerificationError) as caught:
            await client.fetch(envelope()["payload_hash_b64u"])
    assert caught.value.code == "SIGNER_NOT_ALLOWED"
    assert counter.requests == 0


async def test_unknown_hash_is_a_registry_error(
    store: SqlStore, session: aiohttp.ClientSession
) -> None:
    async with serve(registry_app(store, {PUBLISHER.did})) as http:
        client = RegistryClient(str(http.make_url("")), {PUBLISHER.did}, session)
        with pytest.raises(RegistryError) as caught:
            await client.fetch(envelope()["payload_hash_b64u"])
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")


def _other_policy() -> Any:
    return envelope("job-2")


def _edited_payload() -> Any:
    lie = envelope("job-1")
    lie["payload"]["metadata"]["breakglass"]["requester"] = "u-mallory"
    return lie


def _right_policy_wrong_signer() -> Any:
    return envelope("job-1", signer=OUTSIDER)


LIES: dict[str, tuple[Any, type[Exception], str | None]] = {
    "another_validly_signed_policy": (_other_policy, VerificationError, "HASH_MISMATCH"),
    "edited_payload": (_edited_payload, VerificationError, "HASH_MISMATCH"),
    "right_policy_wrong_signer": (
        _right_policy_wrong_signer,
        VerificationError,
        "SIGNER_NOT_ALLOWED",
    ),
    "not_an_envelope": (lambda: ["x"], VerificationError, "MALFORMED_ENVELOPE"),
    "duplicate_keys": (lambda: b'{"payload": {}, "payload": {}}', StrictJsonError, None),
    "huge_answer": (lambda: b'"' + b"x" * (200 * 1024) + b'"', TooLarge, None),
}


@pytest.mark.parametrize("name", sorted(LIES))
async def test_a_lying_registry_is_refused(name: str, session: aiohttp.ClientSession) -> None:
    build, error, code = LIES[name]
    wanted = envelope("job-1")["payload_hash_b64u"]
    async with serve(lying_registry(build())) as http:
        client = RegistryClient(str(http.make_url("")), {PUBLISHER.did}, session)
        with pytest.raises(error) as caught:
            await client.fetch(wanted)
    if code is not None:
        assert isinstance(caught.value, VerificationError)
        assert caught.value.code == code


async def test_a_redirect_is_not_followed(session: aiohttp.ClientSession) -> None:
    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    app = web.Application()
    app.router.add_get("/v1/wpc/{policy_hash_b64u}", redirect)
    async with serve(app) as http:
        client = RegistryClient(str(http.make_url("")), {PUBLISHER.did}, session)
        with pytest.raises(RegistryError) as caught:
            await client.fetch(envelope()["payload_hash_b64u"])
    assert caught.value.status == 302


async def test_a_registry_that_files_under_another_hash_is_refused(
    session: aiohttp.ClientSession,
) -> None:
    answer = {"policy_hash_b64u": envelope("job-2")["payload_hash_b64u"], "existed": False}
    async with serve(lying_registry(answer, status=201)) as http:
        client = RegistryClient(str(http.make_url("")), {PUBLISHER.did}, session)
        with pytest.raises(VerificationError) as caught:
            await client.publish(envelope("job-1"))
    assert caught.value.code == "HASH_MISMATCH"


async def test_publish_refusals_are_typed(store: SqlStore, session: aiohttp.ClientSession) -> None:
    big = copy.deepcopy(envelope())
    big["payload"]["metadata"]["breakglass"]["padding"] = "x" * (65 * 1024)
    async with serve(registry_app(store, {PUBLISHER.did})) as http:
        client = RegistryClient(str(http.make_url("")), {PUBLISHER.did}, session)
        with pytest.raises(VerificationError) as caught:
            await client.publish(envelope(signer=OUTSIDER))
        assert caught.value.code == "SIGNER_NOT_ALLOWED"
        with pytest.raises(TooLarge):
            await client.publish(big)


async def test_unreachable_registry_is_an_adapter_error(session: aiohttp.ClientSession) -> None:
    async with serve(web.Application()) as http:
        base = str(http.make_url(""))
    client = RegistryClient(base, {PUBLISHER.did}, session)  # the server is gone now
    with pytest.raises(AdapterError) as caught:
        await client.fetch(envelope()["payload_hash_b64u"])
    assert isinstance(caught.value, RegistryError)
    assert caught.value.code == "UNREACHABLE"
