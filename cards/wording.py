"""The words every card uses for the same thing, so Teams and Slack say exactly the same.

Every string that came from a person or a directory passes through ``cards.text.clean_*``
here, once, with the length limit for its kind.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from cards.layout import Fact
from cards.text import clean_block, clean_line, truncate
from cards.views import (
    ActionSummary,
    Approval,
    Named,
    RemovalDelayedView,
    SweptView,
    Template,
)
from engine.catalog import REVOKE_SESSIONS

NAME_LIMIT = 120
ID_LIMIT = 128
TEXT_LIMIT = 1500
ITEM_LIMIT = 300
HASH_PREFIX = 12
MAX_ITEMS = 20

TEMPLATE_TITLES = {
    Template.ENTRA_ROLE: "Entra directory role",
    Template.CA_EXCLUSION: "Conditional Access exclusion",
}
_ACTION_WORDS = {
    Template.ENTRA_ROLE: "Activate an Entra directory role for a user, time-bound (PIM)",
    Template.CA_EXCLUSION: "Exclude a group from a Conditional Access policy, time-bound",
}
_LABELS = {
    Template.ENTRA_ROLE: ("Role", "For user"),
    Template.CA_EXCLUSION: ("Policy", "Group excluded"),
}
SIMULATED = "SIMULATED TENANT: a practice run, no real directory is changed"

# Why a window ended, as the cards say it (the job's ``end_reason``).
END_REASONS = {
    "kill": "Kill pressed",
    "done": "Done pressed",
    "timebox_expired": "the time window ended",
    "approval_revoked": "an approval was withdrawn",
    "unexpected_target_detected": "the gateway saw an unexpected target",
    "write_failed": "the privileged write failed",
    "executor_failed": "the executor failed",
    "target_busy": "another open job holds the same grant",
}
ENDED_EARLY_TITLES = {
    "write_failed": "Write failed: the window is ending now",
    "executor_failed": "Executor failed: the window is ending now",
}
ENDED_EARLY_NEXT = (
    "The rollback now undoes whatever may have happened; its result follows in this thread."
)


def named(who: Named) -> str:
    """Display name and id together, so two objects with the same name still differ."""
    name = clean_line(who.display_name, NAME_LIMIT) or "(no display name)"
    return f"{name} (id {clean_line(who.object_id, ID_LIMIT)})"


def text_block(text: str) -> str:
    return clean_block(text, TEXT_LIMIT) or "(none given)"


def item(text: str) -> str:
    return clean_line(text, ITEM_LIMIT)


def items(lines: tuple[str, ...], more: str = "more in the audit log") -> tuple[str, ...]:
    """At most ``MAX_ITEMS`` cleaned lines; the rest counted, never silently dropped."""
    shown = tuple(item(line) for line in lines[:MAX_ITEMS])
    hidden = len(lines) - len(shown)
    return (*shown, f"… and {hidden} {more}") if hidden else shown


def hash_prefix(value: str) -> str:
    return truncate(clean_line(value, ID_LIMIT), HASH_PREFIX + 1)


def at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def at_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


def at_minute(moment: datetime) -> str:
    """``HH:MM UTC``, rounded UP to the minute: "from 17:36" is never before the moment."""
    moment = moment.astimezone(UTC)
    if moment.second or moment.microsecond:
        moment += timedelta(minutes=1)
    return moment.strftime("%H:%M UTC")


def minutes_left(ends_at: datetime, now: datetime) -> int:
    """Whole minutes left, rounded up: 30 s left still reads "1 min", never "0 min"."""
    return max(math.ceil((ends_at - now).total_seconds() / 60), 0)


def countdown(ends_at: datetime, now: datetime) -> str:
    left = minutes_left(ends_at, now)
    if left == 0:
        return f"ended {at(ends_at)} (time is up)"
    return f"ends {at(ends_at)} (≈ {left} min left)"


def action_facts(action: ActionSummary) -> tuple[Fact, ...]:
    """What is done, to what, for whom, where."""
    resource_label, subject_label = _LABELS[action.template]
    tenant = named(action.tenant) + (" [SIMULATED]" if action.simulated else "")
    return (
        Fact("Action", _ACTION_WORDS[action.template]),
        Fact(resource_label, named(action.resource)),
        Fact(subject_label, named(action.subject)),
        Fact("Tenant", tenant),
    )


def approvals_line(approvals: tuple[Approval, ...], required: int) -> str:
    if not approvals:
        return f"0 of {required} so far"
    who = "; ".join(f"{named(a.by)} at {at(a.at)}" for a in approvals[:MAX_ITEMS])
    return f"{len(approvals)} of {required}: {who}"


def end_reason(reason: str) -> str:
    return END_REASONS.get(reason) or item(reason)


def removal_delayed_line(view: RemovalDelayedView) -> str:
    """What contained the grant, when the removal may run, and that it will run then; for a
    principal deleted during the window, that a restore brings the grant back until then."""
    action = view.action
    if action.template is Template.ENTRA_ROLE:
        what = f"the role {named(action.resource)}"
    else:
        what = f"the exclusion of {named(action.subject)} from {named(action.resource)}"
    if view.deleted:
        who = named(action.subject)
        return (
            f"{who} was deleted during the window: {what} stays dormant in deleted items, "
            f"and restoring {who} before {at_minute(view.not_before)} brings it back; "
            "removal will be tried until then."
        )
    when = f"{what} can be removed from {at_minute(view.not_before)}; removal will run then."
    return f"{_contained(view)}; {when}"


def swept_line(view: SweptView) -> str:
    """What the sweep removed, and what it did not do (it revokes no sign-in session)."""
    return (
        f"The reconciliation sweep removed {item(view.grant)}, which job {item(view.job_id)} "
        f"left behind, at {at(view.at)}: that grant is no longer held. The sweep revokes no "
        "sign-in sessions."
    )


def _contained(view: RemovalDelayedView) -> str:
    who = named(view.action.subject)
    others = [item(tool) for tool in view.contained if tool != REVOKE_SESSIONS]
    said = f"Sessions of {who} revoked" if REVOKE_SESSIONS in view.contained else ""
    if others:
        by = "contained by " if said else "Contained by "
        said = "; ".join(filter(None, (said, by + ", ".join(others[:MAX_ITEMS]))))
    return said or f"Nothing contained {who} meanwhile (sign-in sessions NOT revoked)"
