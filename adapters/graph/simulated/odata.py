"""The small part of OData ``$filter`` the simulated Graph understands.

Only ``<field> eq '<value>'`` clauses joined by ``and``, on fields the endpoint names. Anything
else is refused with 400, as Graph refuses filters it does not support, so a client that
builds a wrong filter fails here rather than silently reading everything.
"""

from __future__ import annotations

import re
from collections.abc import Collection

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
