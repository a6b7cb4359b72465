"""The WPC registry over HTTP: ``POST /v1/wpc`` and ``GET /v1/wpc/{policy_hash_b64u}``.

Only a configured publisher key may publish (an empty allowlist refuses everything). A POST
body is bounded before it is read, parsed strictly, verified, and only then stored; a GET
re-hashes what the store holds before serving it. Refusals answer the reference deny shape
``{"ok": false, "error": {"code", "message"}}``, never a traceback, and store nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from aiohttp import web

from adapters.httpbody import read_request
from engine.canonical import strict_loads
from engine.encoding import b64u_decode, is_hash_b64u
from engine.errors import (
    AdapterError,
    InputError,
    StrictJsonError,
    TooLarge,
    VerificationError,
)
from engine.ports import PolicyStore
from engine.wpc import MAX_POLICY_BYTES, check_size, policy_hash, verify_wpc

MAX_BODY_BYTES = MAX_POLICY_BYTES  # the whole signed envelope, as sent
WPC_PATH = "/v1/wpc"

log = logging.getLogger(__name__)


def add_registry_routes(
    app: web.Application, store: PolicyStore, publisher_dids: Collection[str]
) -> None:
    """Mount the registry on ``app``; ``publisher_dids`` are the only keys that may publish."""
    registry = _Registry(store, frozenset(publisher_dids))
    app.router.add_post(WPC_PATH, registry.publish)
    app.router.add_get(WPC_PATH + "/{policy_hash_b64u}", registry.fetch)


def deny(status: int, code: str, message: str) -> web.Response:
    """The reference deny answer."""
    body = {"ok": False, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status)


def _status_of(err: VerificationError) -> int:
    return 403 if err.code == "SIGNER_NOT_ALLOWED" else 400


class _Registry:
    def __init__(self, store: PolicyStore, publishers: frozenset[str]) -> None:
        self.store = store
        self.publishers = publishers

    async def publish(self, request: web.Request) -> web.Response:
        if not self.publishers:
            return _refuse(403, "SIGNER_NOT_ALLOWED", "no publisher is configured")
        try:
            envelope = strict_loads(await read_request(request, MAX_BODY_BYTES))
            policy = verify_wpc(envelope, self.publishers)
            check_size(policy.payload)
            existed = await self.store.put_policy(policy.policy_hash_b64u, envelope)
        except TooLarge as err:
            return _refuse(413, "PAYLOAD_TOO_LARGE", str(err))
        except StrictJsonError as err:
            return _refuse(400, "INVALID_JSON", str(err))
        except VerificationError as err:
            return _refuse(_status_of(err), err.code, err.message)
        except AdapterError as err:
            log.error("registry: store failed while publishing: %s", err)
            return deny(503, "STORE_UNAVAILABLE", "the registry store failed; try again")
        answer = {"policy_hash_b64u": policy.policy_hash_b64u, "existed": existed}
        log.info("registry: published %s (existed=%s)", policy.policy_hash_b64u, existed)
        return web.json_response(answer, status=200 if existed else 201)

    async def fetch(self, request: web.Request) -> web.Response:
        wanted = request.match_info["policy_hash_b64u"]
        if not _is_canonical_hash(wanted):
            return deny(400, "INVALID_POLICY_HASH", "not a 43-character base64url SHA-256")
        try:
            envelope = await self.store.get_policy(wanted)
        except AdapterError as err:
            log.error("registry: store failed while fetching %s: %s", wanted, err)
            return deny(503, "STORE_UNAVAILABLE", "the registry store failed; try again")
        if envelope is None:
            return deny(404, "NOT_FOUND", "no policy has this hash")
        if stored_hash(envelope) != wanted:
            log.error("registry: stored envelope for %s no longer hashes to it", wanted)
            return deny(500, "HASH_MISMATCH", "the stored policy does not match its hash")
        return web.json_response(dict(envelope))


def _refuse(status: int, code: str, message: str) -> web.Response:
    log.info("registry: publish refused: %s %s", status, code)
    return deny(status, code, message)


def stored_hash(envelope: Mapping[str, Any]) -> str | None:
    """The JCS hash of a stored envelope's payload, or None when it cannot be hashed."""
    payload = envelope.get("payload")
    if not isinstance(payload, Mapping):
        return None
    try:
        return policy_hash(payload)
    except (InputError, TypeError, ValueError):
        return None


def _is_canonical_hash(text: str) -> bool:
    if not is_hash_b64u(text):
        return False
    try:
        return len(b64u_decode(text)) == 32
    except InputError:
        return False
