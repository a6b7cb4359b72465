"""Checking tool arguments before any of them reaches a URL, a filter or a request body.

The catalog's JSON Schema is the contract (names, types, bounds); on top of it every directory
object id must be a GUID, so a value can never break out of an OData filter or a URL path, and
the tenant must be the one this adapter is configured for. Failures are ``InputError`` and
name the argument, never echo its value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.catalog import TOOLS
from engine.errors import InputError
from engine.tools import TargetKind

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_MARKER = re.compile(
    r"\[breakglass job=([A-Za-z0-9][A-Za-z0-9._:-]{0,127})"
    r"(?: dep=([A-Za-z0-9][A-Za-z0-9._:-]{0,63}))?\]"
)


def job_marker(job_id: str, deployment: str = "") -> str:
    """The tag written into Graph objects we create, so reconciliation can find them (and
    tell one deployment's grants from another's)."""
    return (
        f"[breakglass job={job_id} dep={deployment}]"
        if deployment
        else f"[breakglass job={job_id}]"
    )


def marked_deployment(text: object) -> str | None:
    """The deployment named by the first marker in ``text``, if it names one."""
    found = _MARKER.search(text) if isinstance(text, str) else None
    return found.group(2) if found else None


def marked_job(text: object) -> str | None:
    """The job id of the first marker in ``text``, if any."""
    found = _MARKER.search(text) if isinstance(text, str) else None
    return found.group(1) if found else None


def is_guid(value: object) -> bool:
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def parse_arguments(tool_name: str, arguments: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    """The arguments of one call, checked; raises ``InputError`` on the first problem."""
    spec = TOOLS.get(tool_name)
    if spec is None:
        raise InputError(f"unknown tool {tool_name[:80]!r}")
    _check_schema(spec.parameters, arguments)
    for name, kind in spec.targets.items():
        _check_target(name, kind, arguments[name], tenant_id)
    if "job_id" in arguments and not _JOB_ID.fullmatch(arguments["job_id"]):
        raise InputError("argument job_id has characters outside [A-Za-z0-9._:-]")
    return dict(arguments)


def _check_target(name: str, kind: TargetKind, value: str, tenant_id: str) -> None:
    if kind is TargetKind.TENANT:
        if value.lower() != tenant_id.lower():
            raise InputError(f"argument {name} names a tenant this adapter does not serve")
    elif not is_guid(value):
        raise InputError(f"argument {name} must be a GUID")


def _check_schema(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> None:
    props: Mapping[str, Any] = schema.get("properties", {})
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise InputError(f"unexpected argument {unknown[0][:40]!r}")
    for name in schema.get("required", []):
        if name not in arguments:
            raise InputError(f"missing argument {name}")
    for name, value in arguments.items():
        _check_value(name, props[name], value)


def _check_value(name: str, rule: Mapping[str, Any], value: Any) -> None:
    if "enum" in rule and value not in rule["enum"]:
        raise InputError(f"argument {name} must be one of {', '.join(rule['enum'])}")
    if rule.get("type") == "string":
        if not isinstance(value, str):
            raise InputError(f"argument {name} must be a string")
        if not rule.get("minLength", 0) <= len(value) <= rule.get("maxLength", len(value)):
            raise InputError(f"argument {name} has a length out of bounds")
    if rule.get("type") == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"argument {name} must be an integer")
        if not rule.get("minimum", value) <= value <= rule.get("maximum", value):
            raise InputError(f"argument {name} is out of bounds")
