"""What the console page may send, parsed strictly: exact JSON types, no coercion.

``"minutes": true`` or ``"1"`` is not a number of minutes and ``"ticket": {"a": 1}`` is not
a ticket: each is refused with a ``FieldError`` naming the field, so the page (or a script)
learns what to fix and nothing is guessed on its behalf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cards.views import RequestValues, Template
from engine.errors import InputError

MAX_TEXT = 2000
MAX_MINUTES = 24 * 60
REQUEST_FIELDS = frozenset(
    {"as", "template", "principal", "resource", "minutes", "justification", "ticket"}
)
ACT_FIELDS = frozenset({"as", "verb", "job_id", "plan_hash"})
# Who acts: a console identity as the page lists them. Anything else (markup, newlines, a
# name of another platform) is refused here: a Kill needs no directory match, and its
# "by" goes into the signed record as given.
IDENTITY = re.compile(r"console:[A-Za-z0-9._@-]{1,64}")


class FieldError(InputError):
    """One input field is missing or of the wrong type; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class ActInput:
    identity: str
    verb: str
    job_id: str
    plan_hash: str | None


def _object(body: object, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise FieldError("body", "must be a JSON object")
    unknown = sorted(str(k) for k in body if k not in allowed)
    if unknown:
        raise FieldError(unknown[0], "is not a field of this form")
    return body


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise FieldError(name, "must be a string")
    if len(value) > MAX_TEXT:
        raise FieldError(name, f"must be at most {MAX_TEXT} characters")
    if required and not value.strip():
        raise FieldError(name, "must not be empty")
    return value


def _minutes(body: Mapping[str, Any]) -> int:
    value = body.get("minutes")
    # bool is an int in Python; true is not a duration.
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("minutes", "must be a whole number (JSON integer)")
    if not 1 <= value <= MAX_MINUTES:
        raise FieldError("minutes", f"must be between 1 and {MAX_MINUTES}")
    return value


def parse_request(body: object) -> tuple[str, RequestValues]:
    """(who acts, what they asked for) from a request form, or ``FieldError``."""
    form = _object(body, REQUEST_FIELDS)
    identity = _identity(form)
    template = _text(form, "template")
    if template not in {t.value for t in Template}:
        raise FieldError("template", f"must be one of {', '.join(t.value for t in Template)}")
    values = RequestValues(
        template=Template(template),
        principal=_text(form, "principal"),
        resource=_text(form, "resource"),
        duration_minutes=_minutes(form),
        justification=_text(form, "justification"),
        ticket=_text(form, "ticket", required=False),
    )
    return identity, values


def parse_act(body: object) -> ActInput:
    """A button press (who, verb, job, plan), or ``FieldError``; the verb is checked later."""
    form = _object(body, ACT_FIELDS)
    plan = form.get("plan_hash")
    if plan is not None and not isinstance(plan, str):
        raise FieldError("plan_hash", "must be a string")
    return ActInput(_identity(form), _text(form, "verb"), _text(form, "job_id"), plan or None)


def _identity(body: Mapping[str, Any]) -> str:
    identity = _text(body, "as")
    if not IDENTITY.fullmatch(identity):
        raise FieldError("as", "must be a console identity, like console:alice")
    return identity


def parse_after(raw: str | None) -> int:
    """The feed's ``after`` cursor: a non-negative integer, 0 when absent."""
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
        raise FieldError("after", "must be a non-negative integer")
    return int(raw)


MAX_CURSOR = 128


def parse_before(raw: str | None) -> str | None:
    """The jobs list's ``before`` cursor (the job id the page starts after), None when absent."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_CURSOR or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise FieldError("before", "must be a job id")
    return raw
