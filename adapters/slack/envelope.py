"""The shape of a signed Slack envelope, checked before Bolt reads it.

Bolt indexes the envelope as Slack builds it (``body["actions"][0]["action_id"]``,
``body["view"]["callback_id"]``…) and parses JSON recursively, so a validly signed body of
another shape (or nested 50,000 deep) would make it raise, deep in its dispatch, a 500 with a
traceback. Here, in order: (1) find the JSON text Bolt will parse (the body, or the ``payload``
field of a form), exactly as ``slack_bolt.request.internals.parse_body`` does; (2) its nesting
is at most :data:`MAX_DEPTH`, counted without recursion; (3) it is an object; (4) every part
Bolt reads has Slack's type. Each failure raises :class:`Malformed`.

Does NOT check what the values mean (who, which job): the listeners and the engine do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

MAX_DEPTH = 64  # Slack's deepest envelopes (rich text in a message in a payload) are ~15
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# Slack sends these as an object, or (in some payload kinds) as a bare id.
_OBJECT_OR_ID = ("team", "enterprise", "user", "channel")
_OBJECTS = ("event", "view", "container", "message", "state")
_LISTS_OF_OBJECTS = ("actions", "authorizations")
_TEXT = {
    "view": ("type", "callback_id", "id", "team_id", "app_installed_team_id"),
    "event": ("type",),
    "action": ("type", "action_id", "block_id", "value"),
}


class Malformed(Exception):
    """A signed body that is not a Slack envelope; ``str`` says why (never the body)."""


def check(body: str, content_types: Iterable[str]) -> None:
    """Raise :class:`Malformed` unless Bolt can read ``body`` without failing."""
    text = _json_text(body, content_types)
    if text is None:
        return  # a plain form (a slash command): flat strings only
    _check_depth(text)
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise Malformed("not JSON") from err
    if not isinstance(doc, dict):
        raise Malformed("not a JSON object")
    _check_parts(doc)


def _json_text(body: str, content_types: Iterable[str]) -> str | None:
    if body.startswith("{") or any(t.split(";")[0] == "application/json" for t in content_types):
        return body
    if "payload" in body:  # Bolt's own test, then the form's payload field
        return dict(parse_qsl(body, keep_blank_values=True)).get("payload")
    return None


def _check_depth(text: str) -> None:
    # Strings may hold brackets; drop them, then count the rest in one flat pass.
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise Malformed(f"JSON nested deeper than {MAX_DEPTH}")


def _check_parts(doc: Mapping[str, Any]) -> None:
    _expect(doc, "type", str)
    for key in _OBJECT_OR_ID:
        _expect(doc, key, (dict, str))
    for key in _OBJECTS:
        _expect(doc, key, dict)
    for key in _LISTS_OF_OBJECTS:
        _expect(doc, key, list)
        if not all(isinstance(item, dict) for item in doc.get(key) or []):
            raise Malformed(f"{key} must be a list of objects")
    _check_kind(doc)


def _check_kind(doc: Mapping[str, Any]) -> None:
    kind = doc.get("type")
    if kind == "block_actions" and not doc.get("actions"):
        raise Malformed("block_actions without actions")
    if kind in ("view_submission", "view_closed") and not isinstance(doc.get("view"), dict):
        raise Malformed(f"{kind} without a view")
    if kind == "event_callback" and not isinstance(doc.get("event"), dict):
        raise Malformed("event_callback without an event")
    _texts(doc.get("view"), "view")
    _texts(doc.get("event"), "event")
    for action in doc.get("actions") or []:
        _texts(action, "action")


def _texts(part: object, name: str) -> None:
    if isinstance(part, dict):
        for key in _TEXT[name]:
            _expect(part, key, str, where=f"{name}.")


def _expect(
    doc: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], where: str = ""
) -> None:
    value = doc.get(key)
    if value is not None and not isinstance(value, kinds):
        raise Malformed(f"{where}{key} has the wrong type")
