"""Application registrations in the simulated tenant: read one, add and remove passwords.

* ``GET /v1.0/applications/{id}``: 404 ``Request_ResourceNotFound`` for an unknown id;
  ``passwordCredentials`` never show ``secretText`` (Graph returns it once, on creation).
* ``POST /v1.0/applications/{id}/addPassword`` with an optional ``passwordCredential``
  (``displayName``, ``startDateTime``, ``endDateTime``): 200 and the new credential, its
  ``secretText`` included; the end defaults to start + 2 years, as documented.
* ``POST /v1.0/applications/{id}/removePassword`` with ``{"keyId"}``: 204; an unknown or
  malformed keyId is 400 (the docs name no code for it; see docs/graph.md).

The tenant keeps a hash of each secret, never the secret.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web

from adapters.graph.simulated.clock import iso
from adapters.graph.simulated.directory import Directory, Doc
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.http_common import GRAPH_PREFIX, core_of, entity, json_body
from adapters.graph.simulated.http_graph import not_found
from adapters.graph.simulated.odata import check_parameters

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CREDENTIAL_KEYS = {"displayName", "startDateTime", "endDateTime"}


def _app(directory: Directory, key: str) -> Doc:
    app = directory.applications.get(key)
    if app is None:
        raise not_found(key)
    return app


def _view(app: Doc) -> Doc:
    """An application as Graph shows it: credentials without their secret (or our hash)."""
    shown = copy.deepcopy(app)
    shown["passwordCredentials"] = [
        {k: v for k, v in cred.items() if k != "secretSha256"} | {"secretText": None}
        for cred in app.get("passwordCredentials", [])
    ]
    return shown


async def get_application(request: web.Request) -> web.Response:
    app = _app(core_of(request).read_view(), request.match_info["id"])
    return entity(request, "applications/$entity", _view(app))


def _requested(body: Any) -> dict[str, Any]:
    if body is None or body == {}:
        return {}
    wrapped = body.get("passwordCredential") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"passwordCredential"}:
        raise SimError(400, "Request_BadRequest", "Expected an optional passwordCredential.")
    if not isinstance(wrapped, dict) or not set(wrapped) <= _CREDENTIAL_KEYS:
        raise SimError(400, "Request_BadRequest", "Invalid passwordCredential properties.")
    return wrapped


async def add_password(request: web.Request) -> web.Response:
    core = core_of(request)
    _app(core.directory, request.match_info["id"])  # 404 before reading the body
    text = await request.text()
    wanted = _requested(await json_body(request) if text else None)
    secret = secrets.token_urlsafe(30)[:40]
    start = core.now()
    created = {
        "customKeyIdentifier": None,
        "displayName": wanted.get("displayName"),
        "endDateTime": wanted.get("endDateTime") or iso(start + timedelta(days=730)),
        "hint": secret[:3],
        "keyId": str(uuid.uuid4()),
        "startDateTime": wanted.get("startDateTime") or iso(start),
    }
    with core.write() as directory:
        stored = created | {"secretSha256": hashlib.sha256(secret.encode()).hexdigest()}
        _app(directory, request.match_info["id"]).setdefault("passwordCredentials", []).append(
            stored
        )
    return entity(request, "microsoft.graph.passwordCredential", created | {"secretText": secret})


async def remove_password(request: web.Request) -> web.Response:
    core = core_of(request)
    _app(core.directory, request.match_info["id"])
    body = await json_body(request)
    if isinstance(body, dict):
        check_parameters(body, ("keyId",), "removePassword")
    key_id = body.get("keyId") if isinstance(body, dict) else None
    if not isinstance(key_id, str) or not _GUID.fullmatch(key_id):
        raise SimError(400, "Request_BadRequest", "keyId must be a GUID.")
    with core.write() as directory:
        app = _app(directory, request.match_info["id"])
        creds = app.get("passwordCredentials", [])
        kept = [c for c in creds if str(c.get("keyId")).lower() != key_id.lower()]
        if len(kept) == len(creds):
            raise SimError(400, "Request_BadRequest", "No password credential has this keyId.")
        app["passwordCredentials"] = kept
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", f"{GRAPH_PREFIX}/applications/{{id}}", get_application)
    add("POST", f"{GRAPH_PREFIX}/applications/{{id}}/addPassword", add_password)
    add("POST", f"{GRAPH_PREFIX}/applications/{{id}}/removePassword", remove_password)
