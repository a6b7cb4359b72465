"""The break-glass job as data: its state, approvals, window, tokens and chain head.

A job is an immutable value; transitions (``engine.lifecycle``) return new ones. It
round-trips through JSON (``to_json`` / ``from_json``) for the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from engine.errors import StoreError
from engine.timeutil import iso_ms, parse_iso

# States. The first six are the way through; the last five are outcomes (resolved).
REQUESTED = "requested"
PENDING = "pending_approval"
APPROVED = "approved"
ACTIVE = "active"
ROLLING_BACK = "rolling_back"
CLOSED = "closed"
DENIED = "denied"
EXPIRED = "expired_unapproved"
KILLED = "killed"
FAILED = "failed"
RESOLVED = frozenset({CLOSED, DENIED, EXPIRED, KILLED, FAILED})
OPEN = frozenset({REQUESTED, PENDING, APPROVED, ACTIVE, ROLLING_BACK})

# Why a window ended.
END_TIMEBOX = "timebox_expired"
END_DONE = "done"
END_KILL = "kill"
END_APPROVAL_REVOKED = "approval_revoked"
END_UNEXPECTED_TARGET = "unexpected_target_detected"
KILL_REASONS = frozenset({END_KILL, END_APPROVAL_REVOKED, END_UNEXPECTED_TARGET})


@dataclass(frozen=True)
class Actor:
    """A person acting through a chat platform, resolved to one directory principal."""

    chat_identity: str  # e.g. "slack:U123", "teams:29:1abc", "console:alice"
    principal: str | None  # None when the identity maps to zero or several principals
    display: str = ""


@dataclass(frozen=True)
class Decision:
    """One approval, denial or withdrawal, as recorded."""

    principal: str
    chat_identity: str
    decision: str  # approve | deny | withdraw
    plan_hash: str
    at: str
    receipt_id: str
    step_up: Mapping[str, Any] | None = None  # evidence of a fresh sign-in (never the token)


@dataclass(frozen=True)
class Plan:
    """A WPC payload proposed for approval; ``revision`` 0 is the request, 1.. extensions."""

    revision: int
    payload: Mapping[str, Any]
    plan_hash: str
    minutes: int
    decisions: tuple[Decision, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _fields_of(self) | {"decisions": [_fields_of(d) for d in self.decisions]}

    def approvers(self) -> list[str]:
        """Principals whose latest decision on this plan is approve, in order."""
        latest: dict[str, str] = {}
        for d in self.decisions:
            latest[d.principal] = d.decision
        return [p for p, d in latest.items() if d == "approve"]


@dataclass(frozen=True)
class Token:
    kind: str  # agent | rollback
    claims: Mapping[str, Any]
    revoked_at: str | None = None

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


@dataclass(frozen=True)
class Job:
    job_id: str
    state: str
    created_at: str
    expires_at: str  # when a pending request expires unapproved
    requester: Actor
    request: Mapping[str, Any]  # template, targets, minutes, justification, ticket
    channel: Mapping[str, Any]  # platform and conversation the request came from
    plan: Plan  # the plan in force (or awaiting approval)
    simulated: bool = False
    extension: Plan | None = None  # a proposed extension awaiting fresh approvals
    policy_envelope: Mapping[str, Any] | None = None  # the signed, published WPC in force
    policies: tuple[Mapping[str, Any], ...] = ()  # every WPC envelope published, in order
    window_start: str | None = None
    window_end: str | None = None
    next_notice_at: str | None = None
    tokens: tuple[Token, ...] = ()
    chain_length: int = 0
    chain_head: str | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    ended_at: str | None = None
    write_done: bool = False
    write_sent: bool = False  # a write may have reached the tenant (sent, whatever came back)
    # The planned write was let out of the gateway and its receipt is not in yet: it may have
    # landed (a crash between sending and receipting leaves this set).
    write_in_flight: bool = False
    verified_after_write: bool | None = None
    rollback_verified: bool | None = None
    rollback_attempts: int = 0
    still_privileged: tuple[str, ...] = ()
    # What the privilege was used for, read after the rollback (engine.activity); None when
    # nothing was read (no grant, or a job from before the read existed).
    activity: Mapping[str, Any] | None = None
    last_tool_call: str | None = None
    tool_receipts: int = 0  # in the chain (a bundle holds 1000: engine.containment)
    external_refs: Mapping[str, str] = field(default_factory=dict)
    refusals: tuple[Mapping[str, str], ...] = ()
    # The causal spans of the model calls so far: root/last span ids and their timestamps.
    model_spans: Mapping[str, str] = field(default_factory=dict)
    # Rollback steps derived from writes during the window (engine.containment.derived_record)
    derived_rollback: tuple[Mapping[str, Any], ...] = ()
    # Credential writes let out of the gateway whose receipt has not said what became of them
    # (engine.containment.credential_mark): each may have created a credential that no
    # derived step removes, so the end names it. In the job only, never in the bundle.
    credentials_in_flight: tuple[Mapping[str, str], ...] = ()
    # When the tenant ends the planned write's grant by itself, at the latest (a PIM
    # schedule's end, UTC to the second), as the write's result said (``GRANT_ENDS_AT``);
    # None when no write said so, or one may have landed whose end is unknown.
    grant_ends_at: str | None = None

    @property
    def resolved(self) -> bool:
        return self.state in RESOLVED

    @property
    def may_have_written(self) -> bool:
        """Could the planned write have reached the tenant (receipted as sent, or in flight)?"""
        return self.write_sent or self.write_in_flight

    def token(self, kind: str) -> Token | None:
        """The newest token of ``kind`` (extensions replace the agent token)."""
        matching = [t for t in self.tokens if t.kind == kind]
        return matching[-1] if matching else None

    def window_end_at(self) -> datetime | None:
        return parse_iso(self.window_end) if self.window_end else None

    def replication_settled_at(self, settle: timedelta) -> datetime:
        """When a read shows whatever the job wrote: ``settle`` after its end (its creation
        while it has not ended). Every write of the job was sent before its end (ADR 0013)."""
        return parse_iso(self.ended_at or self.created_at) + settle

    def to_json(self) -> dict[str, Any]:
        """The job as JSON values. Shallow: inner documents (payloads, claims) are shared,
        never copied, since a job and its documents are never mutated."""
        out = _fields_of(self)
        out["requester"] = _fields_of(self.requester)
        out["plan"] = self.plan.to_json()
        out["extension"] = self.extension.to_json() if self.extension else None
        out["tokens"] = [
            {"kind": t.kind, "claims": t.claims, "revoked_at": t.revoked_at} for t in self.tokens
        ]
        for name in ("policies", "still_privileged", "refusals", "derived_rollback"):
            out[name] = list(out[name])
        if self.credentials_in_flight:
            out["credentials_in_flight"] = list(self.credentials_in_flight)
        else:  # absent, not empty: a replica of the release before can still read the job
            del out["credentials_in_flight"]
        if self.grant_ends_at is None:  # absent likewise
            del out["grant_ends_at"]
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Job:
        try:
            data = dict(doc)
            data["requester"] = Actor(**data["requester"])
            data["plan"] = _plan(data["plan"])
            data["extension"] = _plan(data["extension"]) if data.get("extension") else None
            data["tokens"] = tuple(Token(**t) for t in data.get("tokens", ()))
            data["still_privileged"] = tuple(data.get("still_privileged", ()))
            data["refusals"] = tuple(data.get("refusals", ()))
            data["policies"] = tuple(data.get("policies", ()))
            data["derived_rollback"] = tuple(data.get("derived_rollback", ()))
            data["credentials_in_flight"] = tuple(data.get("credentials_in_flight", ()))
            return cls(**data)
        except (KeyError, TypeError) as exc:
            raise StoreError(f"stored job is not readable: {exc}") from exc

    def but(self, **changes: Any) -> Job:
        """A copy with ``changes``. Not ``dataclasses.replace``, which re-runs ``__init__``
        over all 37 fields (every transition calls this, some twice): a job has no
        ``__post_init__`` and no ``init=False`` field, so a copy of its fields is the same."""
        unknown = changes.keys() - _JOB_FIELDS
        if unknown:
            raise TypeError(f"Job has no field {sorted(unknown)}")
        copy = object.__new__(Job)
        copy.__dict__.update(self.__dict__, **changes)
        return copy


_JOB_FIELDS = frozenset(f.name for f in fields(Job))


def _fields_of(record: Actor | Decision | Plan | Job) -> dict[str, Any]:
    """A record's fields by name, in field order; values are shared, not copied (``asdict``
    deep-copies: a cost on every write)."""
    return {name: getattr(record, name) for name in _field_names(type(record))}


def _field_names(kind: type[Actor | Decision | Plan | Job]) -> tuple[str, ...]:
    # ``fields()`` filters the class's field table on each call: once per class is enough.
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plan(doc: Mapping[str, Any]) -> Plan:
    data = dict(doc)
    data["decisions"] = tuple(Decision(**d) for d in data.get("decisions", ()))
    return Plan(**data)


def stamp(when: datetime) -> str:
    return iso_ms(when)


CA_EXCLUSION = "ca-exclusion"  # the template that excludes a group from a CA policy


def describe_grant(job: Job) -> str:
    """The privilege a job grants, in plain words (for escalations and cards); for a role,
    until when the tenant's own schedule keeps it at the latest, when the write said."""
    targets = job.request.get("targets", {})
    tenant = targets.get("tenant_id", "?")
    if job.request.get("template") == CA_EXCLUSION:
        return (
            f"group {targets.get('group_id')} excluded from Conditional Access policy "
            f"{targets.get('policy_id')} in tenant {tenant}"
        )
    held = (
        f"principal {targets.get('principal_id')} holds role "
        f"{targets.get('role_definition_id')} in tenant {tenant}"
    )
    # A write in flight may have set a later end than the one recorded: then none is said.
    if job.grant_ends_at is None or job.write_in_flight:
        return held
    return f"{held} until {job.grant_ends_at} at the latest (its PIM schedule ends it)"
