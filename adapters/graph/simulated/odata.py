"""The small part of OData the simulated Graph understands: ``$filter`` and request bodies.

``$filter``: only ``<field> eq '<value>'`` clauses joined by ``and``, on fields the endpoint
names. Anything else is refused with 400, as Graph refuses filters it does not support, so a
client that builds a wrong filter fails here rather than silently reading everything.

Request bodies: Graph's types are not open, so a property the type does not define is refused
with 400 ("The property 'x' does not exist on type ..."), never ignored; a misspelt or
misplaced property fails here as it would in Entra. Property names are compared without
regard to case, as Graph documents ("Access data and methods by navigating Microsoft Graph");
instance annotations (``@odata.type``) are allowed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from adapters.graph.simulated.errors import SimError

_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def parse_filter(text: str | None, fields: Collection[str]) -> dict[str, str]:
    """``{field: value}`` for a conjunction of equality clauses; ``{}`` for no filter."""
    if text is None or not text.strip():
        return {}
    result: dict[str, str] = {}
    for clause in _split(text):
        match = _CLAUSE.fullmatch(clause)
        if match is None or match.group(1) not in fields:
            raise SimError(400, "BadRequest", f"Invalid filter clause: {clause.strip()[:80]}")
        result[match.group(1)] = match.group(2).replace("''", "'")
    return result


def _split(text: str) -> list[str]:
    # Split on " and " outside quotes only.
    parts, current, quoted = [], "", False
    for piece in re.split(r"('|\s+and\s+)", text, flags=re.IGNORECASE):
        if piece == "'":
            quoted = not quoted
        if not quoted and _AND.fullmatch(piece):
            parts.append(current)
            current = ""
        else:
            current += piece
    return [*parts, current]


def check_properties(body: Mapping[str, Any], known: Collection[str], type_name: str) -> None:
    """400 for the first property of ``body`` that ``type_name`` does not define."""
    _refuse_unknown(
        body,
        known,
        "The property '{}' does not exist on type 'microsoft.graph."
        + type_name
        + "'. Make sure to only use property names that are defined by the type or mark"
        " the type as open type.",
    )


def check_parameters(body: Mapping[str, Any], known: Collection[str], operation: str) -> None:
    """400 for the first parameter of an action's body that the action does not take."""
    _refuse_unknown(
        body,
        known,
        "The parameter '{}' in the request payload is not a valid parameter for the operation '"
        + operation
        + "'.",
    )


def _refuse_unknown(body: Mapping[str, Any], known: Collection[str], message: str) -> None:
    """400 ``message`` (its ``{}`` the name) for the first name of ``body`` not ``known``."""
    unknown = _unknown(body, known)
    if unknown is not None:
        raise SimError(400, "BadRequest", message.replace("{}", unknown, 1))


def _unknown(body: Mapping[str, Any], known: Collection[str]) -> str | None:
    defined = {k.casefold() for k in known}
    for name in body:
        if not name.startswith("@") and name.casefold() not in defined:
            return name[:60]
    return None


def check_nested(
    body: Mapping[str, Any], name: str, known: Collection[str], type_name: str
) -> None:
    """``check_properties`` on ``body[name]`` when it is an object (a complex property)."""
    value = body.get(name)
    if isinstance(value, Mapping):
        check_properties(value, known, type_name)
