"""Control API of the simulated tenant (``/_sim/...``), for tests and the demo.

Unauthenticated by design: the server binds to loopback only and is a simulation.

=======  =======================  ==========================================================
GET      /_sim/state              the whole true state (no replication lag)
GET      /_sim/grants             active role assignments
POST     /_sim/grants             another administrator assigns a role:
                                  ``{"principalId", "roleDefinitionId", "durationMinutes"?}``
POST     /_sim/clock              ``{"advanceSeconds": n}`` (manual clock only)
POST     /_sim/faults             add a fault: ``{"kind", "method"?, "path"?, "times"?,
                                  "retryAfter"?, "apply"?}`` (see ``faults.py``)
DELETE   /_sim/faults             remove all faults
PUT      /_sim/replication        ``{"reads": n, "seconds": s}``: replication lag
PATCH    /_sim/policies/{id}      another administrator edits a CA policy (Graph PATCH rules)
DELETE   /_sim/users/{id}         another administrator deletes a user (to deleted items)
POST     /_sim/deletedItems/{id}/restore
                                  ... and restores it from there (``deletions``)
GET      /_sim/requests           log of received requests: method, path, status
POST     /_sim/activity           a user did something: ``{"user", "activity", "targets"}``
                                  (an audit entry initiated by that user)
POST     /_sim/signins            a user signs in: ``{"user", "app"?, "errorCode"?}``
PATCH    /_sim/app                an administrator changes the app: ``{"enabled"?: bool,
                                  "secretExpired"?: true, "removePermissions"?: [...],
                                  "restorePermissions"?: [...]}`` (see ``permissions``)
=======  =======================  ==========================================================
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from adapters.graph.simulated import auditlog, deletions, permissions, pim, policies
from adapters.graph.simulated.clock import ManualClock, iso
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.faults import Fault
from adapters.graph.simulated.http_common import core_of, json_body
from adapters.graph.simulated.http_members import MEMBERSHIPS, record_sign_in


async def state(request: web.Request) -> web.Response:
    core = core_of(request)
    return web.json_response(core.directory.view(core.now()))


async def grants(request: web.Request) -> web.Response:
    core = core_of(request)
    active = core.directory.active_assignments(core.now())
    items = [a.instance_view() | {"origin": a.origin} for a in active]
    return web.json_response({"value": items})


async def add_grant(request: web.Request) -> web.Response:
    core, body = core_of(request), await _object(request)
    minutes = body.get("durationMinutes")
    with core.write() as directory:
        created = pim.inject(
            directory,
            str(body.get("principalId")),
            str(body.get("roleDefinitionId")),
            int(minutes) if minutes else None,
            core.now(),
        )
    return web.json_response(created, status=201)


async def advance_clock(request: web.Request) -> web.Response:
    core, body = core_of(request), await _object(request)
    if not isinstance(core.clock, ManualClock):
        raise SimError(409, "Conflict", "the simulator runs on the system clock")
    seconds = body.get("advanceSeconds")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise SimError(400, "BadRequest", "advanceSeconds must be a non-negative number")
    return web.json_response({"now": iso(core.clock.advance(float(seconds)))})


async def add_fault(request: web.Request) -> web.Response:
    body = await _object(request)
    try:
        fault = Fault(
            kind=str(body.get("kind")),
            method=body.get("method"),
            path=str(body.get("path", "")),
            times=int(body.get("times", 1)),
            retry_after=body.get("retryAfter"),
            apply=bool(body.get("apply", True)),
        )
    except (TypeError, ValueError) as exc:
        raise SimError(400, "BadRequest", str(exc)) from exc
    core_of(request).faults.add(fault)
    return web.json_response(asdict(fault), status=201)


async def clear_faults(request: web.Request) -> web.Response:
    core_of(request).faults.clear()
    return web.Response(status=204)


async def set_replication(request: web.Request) -> web.Response:
    core, body = core_of(request), await _object(request)
    core.replication.lag_reads = int(body.get("reads", 0))
    core.replication.lag_seconds = float(body.get("seconds", 0))
    return web.Response(status=204)


async def edit_policy(request: web.Request) -> web.Response:
    core, body = core_of(request), await _object(request)
    with core.write() as directory:
        policy = policies.policy_or_404(directory, request.match_info["id"])
        policies.merge(policy, body)
        policy["modifiedDateTime"] = iso(core.now())
    return web.json_response(policy)


async def delete_user(request: web.Request) -> web.Response:
    core = core_of(request)
    with core.write() as directory:
        deletions.delete_user(directory, request.match_info["id"], core.now())
    return web.Response(status=204)


async def restore_user(request: web.Request) -> web.Response:
    core = core_of(request)
    with core.write() as directory:
        user = deletions.restore_user(directory, request.match_info["id"], core.now())
    return web.json_response(user)


async def request_log(request: web.Request) -> web.Response:
    return web.json_response({"value": [asdict(e) for e in core_of(request).log]})


async def user_activity(request: web.Request) -> web.Response:
    core, body = core_of(request), await _object(request)
    users, activity = core.directory.users, str(body.get("activity") or "")
    entry = auditlog.user_did(
        core.activity, core.now(), users, body.get("user"), activity, body.get("targets", [])
    )
    return web.json_response(entry, status=201)


async def user_sign_in(request: web.Request) -> web.Response:
    body = await _object(request)
    app, code = str(body.get("app") or "Azure Portal")[:120], body.get("errorCode", 0)
    if not isinstance(code, int):
        raise SimError(400, "BadRequest", "errorCode must be an integer")
    members = request.app[MEMBERSHIPS]
    entry = record_sign_in(core_of(request), members, str(body.get("user")), app, code)
    return web.json_response(entry, status=201)


async def change_app(request: web.Request) -> web.Response:
    core, body = core_of(request), await _object(request)
    app = core.credentials
    try:
        removed = [permissions.known(str(n)) for n in body.get("removePermissions", [])]
        restored = [permissions.known(str(n)) for n in body.get("restorePermissions", [])]
    except (TypeError, ValueError) as exc:
        raise SimError(400, "BadRequest", str(exc)) from exc
    if isinstance(body.get("enabled"), bool):
        app.enabled = body["enabled"]
    if body.get("secretExpired") is True:
        app.secret_expires = core.now()
    app.removed_permissions.update(removed)
    app.removed_permissions.difference_update(restored)
    expires = iso(app.secret_expires) if app.secret_expires is not None else None
    state = {"enabled": app.enabled, "secretExpires": expires}
    return web.json_response(state | {"removedPermissions": sorted(app.removed_permissions)})


async def _object(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise SimError(400, "BadRequest", "expected a JSON object")
    return body


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/_sim/state", state)
    add("GET", "/_sim/grants", grants)
    add("POST", "/_sim/grants", add_grant)
    add("POST", "/_sim/clock", advance_clock)
    add("POST", "/_sim/faults", add_fault)
    add("DELETE", "/_sim/faults", clear_faults)
    add("PUT", "/_sim/replication", set_replication)
    add("PATCH", "/_sim/policies/{id}", edit_policy)
    add("DELETE", "/_sim/users/{id}", delete_user)
    add("POST", "/_sim/deletedItems/{id}/restore", restore_user)
    add("GET", "/_sim/requests", request_log)
    add("POST", "/_sim/activity", user_activity)
    add("POST", "/_sim/signins", user_sign_in)
    add("PATCH", "/_sim/app", change_app)
