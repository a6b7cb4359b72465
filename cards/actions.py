"""The one action contract of every button, shared by Teams and Slack.

A button carries no authority: it only names (verb, job id, plan hash). Who pressed it, and
whether that person may, is decided by the engine from the platform's verified identity.

Wire formats (renderers and parsers round-trip exactly):

* Teams ``Action.Execute``: ``verb`` = the verb, ``data`` = ``{"verb", "job_id", "plan_hash"}``
  (``plan_hash`` only when present). The ``Action.Submit`` fallback sends the same ``data``,
  so a Submit is parsed with ``from_teams(None, data)``.
* Slack button: ``action_id`` = ``"breakglass.<verb>"``, ``value`` =
  ``"<verb>|<job_id>|<plan_hash or empty>"``.

Parsers refuse, with :class:`CardActionError`, anything else: unknown verbs or keys, non-string
values, oversized fields, a job id outside :data:`JOB_ID_PATTERN`, a plan hash that is not the
canonical 43-character base64url form of 32 bytes, and a verb that needs a plan hash without one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from engine.errors import InputError


class CardActionError(InputError):
    """A button press whose verb or data is malformed; nothing was done."""


class Verb(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    WITHDRAW = "withdraw"
    KILL = "kill"
    DONE = "done"
    EXTEND = "extend"
    REFRESH = "refresh"


# Deciding about a plan must name the plan; stopping never needs to (Kill always works).
PLAN_BOUND_VERBS = frozenset({Verb.APPROVE, Verb.DENY, Verb.WITHDRAW, Verb.EXTEND})

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{3,63}")
PLAN_HASH_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
SLACK_ACTION_PREFIX = "breakglass."
_SLACK_SEPARATOR = "|"
_MAX_FIELD = 128  # longer than any valid field; checked before any pattern work
_TEAMS_KEYS = frozenset({"verb", "job_id", "plan_hash"})


@dataclass(frozen=True)
class CardAction:
    """What a button press names. Constructing one checks every field."""

    verb: Verb
    job_id: str
    plan_hash: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "verb", _check_verb(self.verb))
        _check_job_id(self.job_id)
        if self.plan_hash is not None:
            _check_plan_hash(self.plan_hash)
        elif self.verb in PLAN_BOUND_VERBS:
            raise CardActionError(f"{self.verb} needs a plan hash")


def _check_verb(verb: object) -> Verb:
    if not isinstance(verb, str) or len(verb) > _MAX_FIELD:
        raise CardActionError("verb must be a short string")
    try:
        return Verb(verb)
    except ValueError:
        raise CardActionError("unknown verb") from None


def _check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or len(job_id) > _MAX_FIELD:
        raise CardActionError("job_id must be a short string")
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise CardActionError("job_id does not match the job id pattern")
    return job_id


def _check_plan_hash(plan_hash: object) -> str:
    if not isinstance(plan_hash, str) or len(plan_hash) > _MAX_FIELD:
        raise CardActionError("plan_hash must be a short string")
    if not PLAN_HASH_PATTERN.fullmatch(plan_hash):
        raise CardActionError("plan_hash must be 43 base64url characters")
    try:
        raw = base64.urlsafe_b64decode(plan_hash + "=")
    except (binascii.Error, ValueError):
        raise CardActionError("plan_hash is not base64url") from None
    # Unused low bits in the last character would give one hash several spellings.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != plan_hash:
        raise CardActionError("plan_hash is not canonical base64url")
    return plan_hash


def to_teams(action: CardAction) -> tuple[str, dict[str, str]]:
    """The ``verb`` and ``data`` of the Adaptive Card action for ``action``."""
    data = {"verb": action.verb.value, "job_id": action.job_id}
    if action.plan_hash is not None:
        data["plan_hash"] = action.plan_hash
    return action.verb.value, data


def to_slack(action: CardAction) -> tuple[str, str]:
    """The ``action_id`` and ``value`` of the Block Kit button for ``action``."""
    value = _SLACK_SEPARATOR.join((action.verb.value, action.job_id, action.plan_hash or ""))
    return SLACK_ACTION_PREFIX + action.verb.value, value


def from_teams(verb: object, data: object) -> CardAction:
    """Parse an ``Action.Execute`` (``verb``, ``data``) or an ``Action.Submit`` (None, ``data``)."""
    if not isinstance(data, Mapping):
        raise CardActionError("action data must be an object")
    if not all(isinstance(key, str) for key in data) or not set(data) <= _TEAMS_KEYS:
        raise CardActionError("action data has unknown keys")
    named = _check_verb(data.get("verb"))
    if verb is not None and _check_verb(verb) != named:
        raise CardActionError("verb and data disagree")
    plan_hash = _check_plan_hash(data["plan_hash"]) if "plan_hash" in data else None
    return CardAction(named, _check_job_id(data.get("job_id")), plan_hash)


def from_slack(action_id: object, value: object) -> CardAction:
    """Parse a Block Kit button press (its ``action_id`` and ``value``)."""
    if not isinstance(action_id, str) or len(action_id) > _MAX_FIELD:
        raise CardActionError("action_id must be a short string")
    if not isinstance(value, str) or len(value) > 3 * _MAX_FIELD:
        raise CardActionError("value must be a short string")
    if not action_id.startswith(SLACK_ACTION_PREFIX):
        raise CardActionError("action_id is not ours")
    parts = value.split(_SLACK_SEPARATOR)
    if len(parts) != 3:
        raise CardActionError("value must be verb|job_id|plan_hash")
    named, job_id, plan_hash = parts
    if _check_verb(action_id.removeprefix(SLACK_ACTION_PREFIX)) != _check_verb(named):
        raise CardActionError("action_id and value disagree")
    plan = _check_plan_hash(plan_hash) if plan_hash else None
    return CardAction(Verb(named), _check_job_id(job_id), plan)
