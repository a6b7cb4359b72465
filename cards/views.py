"""What each card shows, as plain frozen values the bot fills from a job.

One view per moment of a break-glass job. Views hold raw text exactly as people typed it:
escaping for a platform happens only in the renderers (``cards.teams``, ``cards.slack``), so a
view can never be "escaped twice" or "escaped for the wrong platform".

Constructors enforce what the renderers rely on (aware datetimes, positive counts); they do NOT
check that ids exist, that the plan hash matches a plan, or that approvers are eligible: that
is the engine's job, and buttons carry no authority anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar


class Template(StrEnum):
    ENTRA_ROLE = "entra-role"
    CA_EXCLUSION = "ca-exclusion"


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    WITHDRAW = "withdraw"


class StepOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _require_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class _Checked:
    """A view that checks, when built, the invariants it names: ``_must_be_aware`` datetimes
    carry a timezone, ``_must_be_positive`` counts are at least 1."""

    _must_be_aware: ClassVar[tuple[str, ...]] = ()
    _must_be_positive: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self._must_be_aware:
            _require_aware(name, getattr(self, name))
        for name in self._must_be_positive:
            _require_positive(name, getattr(self, name))


@dataclass(frozen=True)
class Named:
    """A directory object or person shown as display name AND id, so look-alikes differ."""

    display_name: str
    object_id: str


@dataclass(frozen=True)
class ActionSummary(_Checked):
    """Exactly what the privileged step does.

    ``subject`` gets the access (the principal for entra-role, the group for ca-exclusion);
    ``resource`` is what it gets (the directory role, or the Conditional Access policy the
    group is excluded from).
    """

    template: Template
    tenant: Named
    subject: Named
    resource: Named
    duration_minutes: int
    simulated: bool = False

    _must_be_positive = ("duration_minutes",)


@dataclass(frozen=True)
class Approval(_Checked):
    """One recorded approval decision by a person."""

    by: Named
    at: datetime

    _must_be_aware = ("at",)


@dataclass(frozen=True)
class RequestValues(_Checked):
    """What a person typed into the request form (also what a submission parses into)."""

    template: Template
    principal: str
    resource: str
    duration_minutes: int
    justification: str
    ticket: str = ""

    _must_be_positive = ("duration_minutes",)


@dataclass(frozen=True)
class RequestFormView(_Checked):
    """The request form; ``values`` pre-fills it (for example after a refused submission)."""

    templates: tuple[Template, ...] = (Template.ENTRA_ROLE, Template.CA_EXCLUSION)
    # The configured maximum (policy.max_minutes); a template's own may be lower and the
    # form offers the lower one (forms.max_minutes), as the engine accepts.
    max_duration_minutes: int = 60
    values: RequestValues | None = None
    error: str | None = None
    context: str = ""  # opaque, returned with the submission (Slack private_metadata)

    _must_be_positive = ("max_duration_minutes",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.templates:
            raise ValueError("templates must not be empty")


@dataclass(frozen=True)
class ApprovalView(_Checked):
    """The approval prompt: everything an approver needs to decide, on one phone screen."""

    job_id: str
    plan_hash_b64u: str
    policy_hash_b64u: str
    action: ActionSummary
    ends_at: datetime  # the hard end of the window, if approved
    justification: str
    ticket: str
    requester: Named
    rollback: tuple[str, ...]  # the rollback plan, one plain-words step each
    approvals: tuple[Approval, ...] = ()
    approvals_required: int = 2
    approver_teams_ids: tuple[str, ...] = ()  # Teams user ids of the designated approvers

    _must_be_aware = ("ends_at",)
    _must_be_positive = ("approvals_required",)


@dataclass(frozen=True)
class ApprovalResultView(_Checked):
    """What one approval decision changed."""

    job_id: str
    plan_hash_b64u: str
    action: ActionSummary
    decision: Decision
    by: Named
    at: datetime
    approvals_count: int
    approvals_required: int = 2
    reason: str = ""  # optional words from the person who decided

    _must_be_aware = ("at",)
    _must_be_positive = ("approvals_required",)


@dataclass(frozen=True)
class ToolCall(_Checked):
    """The last tool call the executor made, as the gateway recorded it."""

    tool: str
    status: str
    at: datetime

    _must_be_aware = ("at",)


@dataclass(frozen=True)
class StatusView(_Checked):
    """The countdown card. ``active`` decides whether Kill / Done / Extend are offered."""

    job_id: str
    plan_hash_b64u: str
    action: ActionSummary
    state: str
    ends_at: datetime
    active: bool = True
    last_tool_call: ToolCall | None = None

    _must_be_aware = ("ends_at",)


@dataclass(frozen=True)
class ReceiptLineView(_Checked):
    """One receipted event, as a single line in the incident thread."""

    job_id: str
    seq: int
    at: datetime
    kind: str  # model_call | tool_call | approval | revocation | run_end | ...
    summary: str
    outcome: str
    chain_head_b64u: str

    _must_be_aware = ("at",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seq < 0:
            raise ValueError("seq must not be negative")


@dataclass(frozen=True)
class RollbackStep:
    """One rollback step and the verification read that followed it."""

    description: str
    outcome: StepOutcome
    verified: bool
    detail: str = ""


@dataclass(frozen=True)
class KillResultView(_Checked):
    """How the job ended: what was revoked, each rollback step, and what is STILL privileged."""

    job_id: str
    action: ActionSummary
    trigger: str  # kill | done | timebox_expired | approval_revoked | unexpected_target_detected
    ended_at: datetime
    revoked: tuple[str, ...]
    steps: tuple[RollbackStep, ...]
    still_privileged: tuple[str, ...] = ()  # non-empty means rollback failed: say it loudly
    by: Named | None = None

    _must_be_aware = ("ended_at",)


@dataclass(frozen=True)
class AuditSummaryView(_Checked):
    """The closing summary with the proof bundle's hash and how to verify it offline."""

    job_id: str
    action: ActionSummary
    requester: Named
    approvals: tuple[Approval, ...]
    ran: tuple[str, ...]  # what ran, one line per tool call
    started_at: datetime
    ended_at: datetime
    outcome: str
    rollback_verified: bool
    bundle_hash_b64u: str
    bundle_file: str = "bundle.json"
    report_url: str | None = None  # the readable report, when the service has a public URL
    # What the privilege was used for, from the tenant's logs (engine.activity.sentence).
    activity: str | None = None

    _must_be_aware = ("started_at", "ended_at")


@dataclass(frozen=True)
class RemovalDelayedView(_Checked):
    """The tenant refuses the removal until ``not_before``; ``contained`` names the kill steps
    (tools) that already stopped the grant's use meanwhile. ``deleted``: the principal was
    deleted during the window; its grant stays dormant in deleted items, a restore before
    ``not_before`` brings it back, and removal is tried until then."""

    job_id: str
    action: ActionSummary
    not_before: datetime
    contained: tuple[str, ...] = ()
    deleted: bool = False

    _must_be_aware = ("not_before",)


@dataclass(frozen=True)
class EndedEarlyView:
    """The window ends now because the work failed (``write_failed`` / ``executor_failed``)."""

    job_id: str
    action: ActionSummary
    reason: str
    detail: str = ""  # the error as the executor saw it: tenant text, shown inert


@dataclass(frozen=True)
class SweptView(_Checked):
    """The reconciliation sweep removed ``grant`` (its description), which the resolved job
    left behind: told to the channel that saw the job's escalation (chat only)."""

    job_id: str
    action: ActionSummary
    grant: str
    at: datetime

    _must_be_aware = ("at",)


Announcement = RemovalDelayedView | EndedEarlyView | SweptView
