"""The simulated reporting API: ``GET /auditLogs/directoryAudits`` and ``/auditLogs/signIns``.

As documented for Graph (docs/graph.md): ``$filter`` with ``eq`` on the id fields and
``eq``/``ge``/``le`` on the timestamp (an unquoted DateTimeOffset), clauses joined by
``and``; anything else is 400. ``$top`` from 1 to 1,000 sets the page size; more pages come
as ``@odata.nextLink``. The reporting gate (``auditlog.ReportsGate``) answers bursts with 429.
Entries appear only after the log's latency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.http_common import GRAPH_PREFIX, collection, core_of

REPORTS = f"{GRAPH_PREFIX}/auditLogs"
MAX_TOP = 1000
_TIME_OPS = frozenset({"eq", "ge", "le"})
_EQ = frozenset({"eq"})
AUDIT_FIELDS = {
    "initiatedBy/user/id": _EQ,
    "activityDateTime": _TIME_OPS,
    "activityDisplayName": _EQ,
    "category": _EQ,
}
SIGN_IN_FIELDS = {"userId": _EQ, "createdDateTime": _TIME_OPS, "appDisplayName": _EQ}
_CLAUSE = re.compile(r"\s*([\w/]+)\s+(eq|ge|le)\s+('(?:[^']|'')*'|[0-9T:.+Z-]+)\s*")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)

Clause = tuple[str, str, Any]


def parse_log_filter(text: str | None, fields: Mapping[str, frozenset[str]]) -> list[Clause]:
    """(field, op, value) clauses; a string for ``eq`` on ids, a datetime for timestamps."""
    if text is None or not text.strip():
        return []
    clauses = []
    for part in _AND.split(text):  # the values we accept never contain " and "
        match = _CLAUSE.fullmatch(part)
        if match is None or match.group(2) not in fields.get(match.group(1), ()):
            raise SimError(400, "BadRequest", f"Invalid filter clause: {part.strip()[:80]}")
        name, op, raw = match.groups()
        clauses.append((name, op, _value(name, raw)))
    return clauses


def _value(name: str, raw: str) -> Any:
    if name.endswith("DateTime"):
        if raw.startswith("'"):
            raise SimError(400, "BadRequest", f"{name} takes a DateTimeOffset, not a string")
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SimError(400, "BadRequest", f"Invalid DateTimeOffset for {name}") from exc
    if not raw.startswith("'"):
        raise SimError(400, "BadRequest", f"{name} takes a quoted string")
    return raw[1:-1].replace("''", "'")


def _field(entry: Mapping[str, Any], path: str) -> Any:
    node: Any = entry
    for key in path.split("/"):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _matches(entry: Mapping[str, Any], clauses: list[Clause]) -> bool:
    for name, op, wanted in clauses:
        value = _field(entry, name)
        if isinstance(wanted, datetime):
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            ok = {"eq": at == wanted, "ge": at >= wanted, "le": at <= wanted}[op]
        else:
            ok = value == wanted
        if not ok:
            return False
    return True


def _top(request: web.Request) -> int | None:
    raw = request.query.get("$top")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise SimError(400, "BadRequest", f"$top must be between 1 and {MAX_TOP}")
    return int(raw)


async def _listing(
    request: web.Request, kind: str, stamp: str, fields: Mapping[str, frozenset[str]]
) -> web.Response:
    """One page of a log: gate, filter, the entries already readable, paged."""
    core = core_of(request)
    core.reports_gate.admit()
    clauses = parse_log_filter(request.query.get("$filter"), fields)
    entries = getattr(core.activity, kind)
    items = [e for e in core.activity.readable(entries, stamp, core.now()) if _matches(e, clauses)]
    fragment = "auditLogs/directoryAudits" if kind == "audits" else "auditLogs/signIns"
    return collection(request, fragment, items, _top(request))


async def directory_audits(request: web.Request) -> web.Response:
    return await _listing(request, "audits", "activityDateTime", AUDIT_FIELDS)


async def sign_ins(request: web.Request) -> web.Response:
    return await _listing(request, "sign_ins", "createdDateTime", SIGN_IN_FIELDS)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{REPORTS}/directoryAudits", directory_audits)
    app.router.add_get(f"{REPORTS}/signIns", sign_ins)
