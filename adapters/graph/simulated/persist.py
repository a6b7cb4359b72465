"""The simulated tenant's state in a JSON file, so a restarted tenant resumes where it was.

Written atomically after every change (temporary file in the same directory, fsync, rename):
a crash leaves either the old state or the new one, never half of each. Tokens, faults,
replication lag and the request log are not state of the directory and are not kept.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adapters.graph.simulated.clock import parse_iso
from adapters.graph.simulated.directory import Assignment, Directory, RoleDefinition
from engine.errors import ConfigError

Doc = dict[str, Any]
FORMAT = "breakglass-simulated-tenant/1"


def dump(directory: Directory) -> Doc:
    return {
        "format": FORMAT,
        "tenantId": directory.tenant_id,
        "appId": directory.app_id,
        "users": list(directory.users.values()),
        "deletedUsers": list(directory.deleted_users.values()),
        "roles": [_role(r) for r in directory.roles.values()],
        "groups": list(directory.groups.values()),
        "policies": list(directory.policies.values()),
        "assignments": [_assignment(a) for a in directory.assignments],
        "requests": directory.requests,
        "revocations": directory.revocations,
        "applications": list(directory.applications.values()),
    }


def load(doc: Any) -> Directory:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"not a simulated tenant state file ({FORMAT} expected)")
    try:
        return _directory(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the simulated tenant state file is damaged ({exc!r:.80})") from exc


def _directory(doc: Doc) -> Directory:
    return Directory(
        tenant_id=doc["tenantId"],
        app_id=doc["appId"],
        users={u["id"]: u for u in doc["users"]},
        roles={r["id"]: RoleDefinition(**r) for r in doc["roles"]},
        groups={g["id"]: g for g in doc["groups"]},
        policies={p["id"]: p for p in doc["policies"]},
        assignments=[_parse_assignment(a) for a in doc["assignments"]],
        requests=list(doc["requests"]),
        revocations=list(doc.get("revocations", [])),
        applications={a["id"]: a for a in doc.get("applications", [])},
        deleted_users={u["id"]: u for u in doc.get("deletedUsers", [])},
    )


def save(path: Path, directory: Directory) -> None:
    """Replace ``path`` with the directory's state in one atomic step."""
    text = json.dumps(dump(directory), sort_keys=True, indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> Directory | None:
    """The saved directory, or None when nothing was saved yet."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"the simulated tenant state file {path.name} is not JSON") from exc
    return load(doc)


def _role(role: RoleDefinition) -> Doc:
    return {
        "id": role.id,
        "display_name": role.display_name,
        "max_minutes": role.max_minutes,
        "require_justification": role.require_justification,
    }


_TIMES = ("start", "end", "removed_at")


def _assignment(a: Assignment) -> Doc:
    doc = asdict(a)
    # Full precision: iso() would cut the microseconds a system clock has.
    return doc | {k: doc[k].isoformat() if doc[k] else None for k in _TIMES}


def _parse_assignment(doc: Doc) -> Assignment:
    return Assignment(**(doc | {k: parse_iso(doc[k]) if doc[k] else None for k in _TIMES}))
