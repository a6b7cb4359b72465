"""Response shapes and middlewares shared by the simulated tenant's HTTP endpoints.

Every answer carries ``X-Breakglass-Simulated: true``, a ``request-id`` and the caller's
``client-request-id`` (or a fresh one), like Graph. Refusals are rendered as Graph error
bodies; token endpoint refusals as Entra OAuth2 error bodies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from adapters.graph.simulated.clock import iso
from adapters.graph.simulated.core import LogEntry, SimCore
from adapters.graph.simulated.errors import SimError, TokenError

SIM_HEADER = "X-Breakglass-Simulated"
CORE: web.AppKey[SimCore] = web.AppKey("breakglass_sim_core", SimCore)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
CLIENT_REQUEST_ID: web.RequestKey[str] = web.RequestKey("client_request_id", str)
DROPPED: web.RequestKey[bool] = web.RequestKey("dropped", bool)
GRAPH_PREFIX = "/v1.0"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def core_of(request: web.Request) -> SimCore:
    return request.app[CORE]


def odata_context(request: web.Request, fragment: str) -> str:
    return f"{request.scheme}://{request.host}{GRAPH_PREFIX}/$metadata#{fragment}"


def entity(
    request: web.Request, fragment: str, body: dict[str, Any], status: int = 200
) -> web.Response:
    doc = {"@odata.context": odata_context(request, fragment), **body}
    return web.json_response(doc, status=status)


def collection(
    request: web.Request,
    fragment: str,
    items: Iterable[dict[str, Any]],
    top: int | None = None,
) -> web.Response:
    """A ``value`` list, paged with ``@odata.nextLink`` / ``$skiptoken`` (pages of at most
    ``top`` items, when the endpoint honours ``$top``)."""
    everything = list(items)
    size = min(core_of(request).page_size, top or core_of(request).page_size)
    start = _skiptoken(request)
    doc: dict[str, Any] = {
        "@odata.context": odata_context(request, fragment),
        "value": everything[start : start + size],
    }
    if start + size < len(everything):
        doc["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": str(start + size)}))
    return web.json_response(doc)


def _skiptoken(request: web.Request) -> int:
    raw = request.query.get("$skiptoken", "0")
    if not raw.isdigit():
        raise SimError(400, "BadRequest", "Invalid $skiptoken.")
    return int(raw)


async def json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.text())
    except ValueError as exc:
        raise SimError(400, "BadRequest", "Unable to read JSON request payload.") from exc


def graph_error(request: web.Request, err: SimError) -> web.Response:
    inner = {
        "date": iso(core_of(request).now()),
        "request-id": request[REQUEST_ID],
        "client-request-id": request[CLIENT_REQUEST_ID],
    }
    body = {"error": {"code": err.code, "message": err.message, "innerError": inner}}
    return web.json_response(body, status=err.status, headers=err.headers)


def token_error(request: web.Request, err: TokenError) -> web.Response:
    trace, now = request[REQUEST_ID], iso(core_of(request).now())
    description = (
        f"AADSTS{err.aadsts}: {err.description} Trace ID: {trace} "
        f"Correlation ID: {request[CLIENT_REQUEST_ID]} Timestamp: {now}"
    )
    body = {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.aadsts],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": request[CLIENT_REQUEST_ID],
    }
    return web.json_response(body, status=err.status)


@web.middleware
async def stamp(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ids and the simulated-label header on every answer; errors rendered; request logged."""
    request[REQUEST_ID] = str(uuid.uuid4())
    request[CLIENT_REQUEST_ID] = request.headers.get("client-request-id") or str(uuid.uuid4())
    try:
        response = await handler(request)
    except SimError as err:
        response = graph_error(request, err)
    except TokenError as err:
        response = token_error(request, err)
    except web.HTTPException as exc:
        code = "NotFound" if exc.status == 404 else "BadRequest"
        response = graph_error(request, SimError(exc.status, code, exc.reason))
    response.headers[SIM_HEADER] = "true"
    response.headers["request-id"] = request[REQUEST_ID]
    response.headers["client-request-id"] = request[CLIENT_REQUEST_ID]
    status = 0 if request.get(DROPPED) else response.status
    entry = LogEntry(request.method, request.path, status, request.query_string)
    core_of(request).log.append(entry)
    return response
