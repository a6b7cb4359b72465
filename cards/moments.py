"""Each moment of a job as one platform-neutral :class:`~cards.layout.Card`.

The renderers in ``cards.teams`` and ``cards.slack`` draw these; nothing here knows a platform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from cards import wording as w
from cards.actions import CardAction, Verb
from cards.layout import (
    Banner,
    Bullets,
    Button,
    ButtonStyle,
    Card,
    Fact,
    Facts,
    Link,
    Note,
    Part,
    Tone,
)
from cards.text import clean_line
from cards.views import (
    ActionSummary,
    Announcement,
    ApprovalResultView,
    ApprovalView,
    AuditSummaryView,
    Decision,
    EndedEarlyView,
    KillResultView,
    ReceiptLineView,
    RemovalDelayedView,
    RollbackStep,
    StatusView,
    StepOutcome,
    SweptView,
)
from engine.job import PENDING, ROLLING_BACK

_BUTTONS = {
    Verb.APPROVE: ("Approve", ButtonStyle.PRIMARY),
    Verb.DENY: ("Deny", ButtonStyle.DANGER),
    Verb.WITHDRAW: ("Withdraw my approval", ButtonStyle.DEFAULT),
    Verb.KILL: ("Kill now", ButtonStyle.DANGER),
    Verb.DONE: ("Done: end early", ButtonStyle.DEFAULT),
    Verb.EXTEND: ("Extend (needs 2 new approvals)", ButtonStyle.DEFAULT),
    Verb.REFRESH: ("Show my options", ButtonStyle.DEFAULT),  # Teams: a client's own variant
}


def _simulated(action: ActionSummary) -> tuple[Part, ...]:
    return (Banner(w.SIMULATED, Tone.WARNING),) if action.simulated else ()


def _buttons(
    verbs: Iterable[Verb], job_id: str, plan_hash: str, confirm: str | None = None
) -> tuple[Button, ...]:
    made = []
    for verb in verbs:
        label, style = _BUTTONS[verb]
        ask = confirm if verb is Verb.APPROVE else None
        made.append(Button(label, CardAction(verb, job_id, plan_hash), style, ask))
    return tuple(made)


def _plan_facts(job_id: str, plan_hash: str) -> tuple[Fact, ...]:
    return (
        Fact("Plan hash", w.hash_prefix(plan_hash), mono=True),
        Fact("Job", w.item(job_id), mono=True),
    )


def _approve_question(view: ApprovalView) -> str:
    action = view.action
    return (
        f"Approve {clean_line(action.resource.display_name, 60)} for "
        f"{clean_line(action.subject.display_name, 60)} in "
        f"{clean_line(action.tenant.display_name, 40)}"
        f"{' (SIMULATED)' if action.simulated else ''} for "
        f"{action.duration_minutes} min, until {w.at(view.ends_at)}?"
    )


def approval(view: ApprovalView, verbs: tuple[Verb, ...], note: str) -> Card:
    """The approval prompt, with the buttons in ``verbs`` and a ``note`` for this viewer."""
    title = f"Approval needed: {w.TEMPLATE_TITLES[view.action.template]}"
    request = (
        *w.action_facts(view.action),
        Fact("Duration", f"{view.action.duration_minutes} min, ends by {w.at(view.ends_at)}"),
        Fact("Requested by", w.named(view.requester)),
        Fact("Justification", w.text_block(view.justification), multiline=True),
        Fact("Ticket", w.item(view.ticket) or "(none)"),
    )
    rollback = w.items(view.rollback) or ("NO ROLLBACK PLAN: do not approve",)
    decided = Fact("Approvals", w.approvals_line(view.approvals, view.approvals_required))
    parts = (
        *_simulated(view.action),
        Facts(request),
        Bullets("If approved, the rollback will", rollback),
        Facts((decided, Fact("Policy hash", w.hash_prefix(view.policy_hash_b64u), mono=True))),
        Facts(_plan_facts(view.job_id, view.plan_hash_b64u)),
        Note(note),
    )
    buttons = _buttons(verbs, view.job_id, view.plan_hash_b64u, _approve_question(view))
    return Card(f"{title} (job {view.job_id})", parts, title, buttons)


_RESULT_TITLES = {
    Decision.APPROVE: "Approval recorded",
    Decision.DENY: "Request denied",
    Decision.WITHDRAW: "Approval withdrawn",
}


def _next_step(view: ApprovalResultView) -> str:
    if view.decision is Decision.DENY:
        return "The request is closed; nothing was changed."
    missing = view.approvals_required - view.approvals_count
    if missing > 0:
        return f"{view.approvals_count} of {view.approvals_required}: waiting for {missing} more."
    return f"{view.approvals_count} of {view.approvals_required}: approvals complete."


def approval_result(view: ApprovalResultView) -> Card:
    """What one decision changed, and what happens next."""
    title = _RESULT_TITLES[view.decision]
    facts = [Fact("By", f"{w.named(view.by)} at {w.at(view.at)}"), Fact("Next", _next_step(view))]
    if view.reason:
        facts.append(Fact("Reason", w.text_block(view.reason), multiline=True))
    parts = (
        *_simulated(view.action),
        Facts(tuple(facts)),
        Facts(w.action_facts(view.action)),
        Facts(_plan_facts(view.job_id, view.plan_hash_b64u)),
    )
    return Card(f"{title} (job {view.job_id})", parts, title)


def _last_call(view: StatusView) -> str:
    call = view.last_tool_call
    if call is None:
        return "none yet"
    return f"{w.item(call.tool)} → {w.item(call.status)} at {w.at_seconds(call.at)}"


_PHASES = {PENDING: "awaiting approval", ROLLING_BACK: "ending, rolling back"}


def _phase(view: StatusView) -> str:
    """A pending or rolling-back job is neither "active" nor "closed" yet."""
    return "active" if view.active else _PHASES.get(view.state, "closed")


def status(view: StatusView, now: datetime) -> Card:
    """The countdown: time left from ``now``, state, last tool call, Kill / Done / Extend."""
    template = w.TEMPLATE_TITLES[view.action.template]
    title = f"Break-glass {_phase(view)}: {template}"
    facts = (
        Fact("Time", w.countdown(view.ends_at, now)),
        Fact("State", w.item(view.state)),
        *w.action_facts(view.action)[1:],
        Fact("Last tool call", _last_call(view)),
        Fact("Job", w.item(view.job_id), mono=True),
    )
    parts: tuple[Part, ...] = (*_simulated(view.action), Facts(facts))
    buttons: tuple[Button, ...] = ()
    if view.active:
        parts = (*parts, Note("Anyone here may press Kill. Extending needs 2 new approvals."))
        verbs = (Verb.KILL, Verb.DONE, Verb.EXTEND)
        buttons = _buttons(verbs, view.job_id, view.plan_hash_b64u)
    return Card(f"{title} (job {view.job_id})", parts, title, buttons)


def _receipt_line(view: ReceiptLineView) -> str:
    return (
        f"#{view.seq} {w.at_seconds(view.at)} {w.item(view.kind)}: {w.item(view.summary)}"
        f" → {w.item(view.outcome)} · chain head {w.hash_prefix(view.chain_head_b64u)}"
    )


def receipt(view: ReceiptLineView) -> Card:
    """One compact line per receipted event, ending in the chain head it produced."""
    line = _receipt_line(view)
    return Card(f"Receipt #{view.seq} (job {view.job_id})", (Note(line, mono=True),))


def receipts(views: Sequence[ReceiptLineView]) -> Card:
    """Every record of one receipts event as ONE message: a line each, at most
    ``w.MAX_ITEMS`` shown and the rest counted, so one event is one bounded post."""
    if not views:
        raise ValueError("receipts needs at least one record")
    if len(views) == 1:
        return receipt(views[0])
    ordered = sorted(views, key=lambda v: v.seq)
    first, last = ordered[0].seq, ordered[-1].seq
    title = f"Receipts #{first}–#{last}"
    lines = w.items(tuple(_receipt_line(v) for v in ordered))
    return Card(f"{title} (job {ordered[0].job_id})", (Bullets(title, lines),))


def removal_delayed(view: RemovalDelayedView) -> Card:
    """The tenant refuses the removal for now: what contained the grant, and when it goes
    (or, its principal deleted, until when a restore would bring the grant back)."""
    if view.deleted:
        title = "Principal deleted during the window: the rollback waits"
        tone = Tone.WARNING  # a deleted account cannot sign in; a restore is what to watch
    else:
        title = "Removal delayed by the tenant: access contained meanwhile"
        tone = Tone.WARNING if view.contained else Tone.DANGER
    parts = (
        *_simulated(view.action),
        Banner(w.removal_delayed_line(view), tone),
        Facts((*w.action_facts(view.action)[1:], Fact("Job", w.item(view.job_id), mono=True))),
    )
    return Card(f"{title} (job {view.job_id})", parts, title)


def ended_early(view: EndedEarlyView) -> Card:
    """The work failed: the window ends now and the rollback runs."""
    title = w.ENDED_EARLY_TITLES.get(view.reason) or "The window is ending now"
    facts = (
        Fact("Why", w.end_reason(view.reason)),
        Fact("Error", w.text_block(view.detail), multiline=True),
        *w.action_facts(view.action)[1:],
        Fact("Job", w.item(view.job_id), mono=True),
    )
    parts = (
        *_simulated(view.action),
        Facts(facts),
        Note(w.ENDED_EARLY_NEXT),
    )
    return Card(f"{title} (job {view.job_id})", parts, title)


def swept(view: SweptView) -> Card:
    """The reconciliation sweep removed what the (resolved) job left behind."""
    title = "Reconciliation removed what the job left behind"
    parts = (
        *_simulated(view.action),
        Banner(w.swept_line(view), Tone.GOOD),
        Facts((*w.action_facts(view.action)[1:], Fact("Job", w.item(view.job_id), mono=True))),
    )
    return Card(f"{title} (job {view.job_id})", parts, title)


def announcement(view: Announcement) -> Card:
    if isinstance(view, RemovalDelayedView):
        return removal_delayed(view)
    if isinstance(view, SweptView):
        return swept(view)
    return ended_early(view)


def _step_line(step: RollbackStep) -> str:
    mark = "✔ ok" if step.outcome is StepOutcome.OK else f"✘ {step.outcome.value.upper()}"
    check = "verified" if step.verified else "NOT VERIFIED"
    detail = f": {w.item(step.detail)}" if step.detail else ""
    return f"{mark}, {check}: {w.item(step.description)}{detail}"


def _ended_by(view: KillResultView) -> str:
    why = w.end_reason(view.trigger)
    who = f" by {w.named(view.by)}" if view.by is not None else ""
    return f"{why}{who} at {w.at(view.ended_at)}"


def _kill_title(view: KillResultView) -> str:
    if view.still_privileged:
        return "ROLLBACK FAILED: access is STILL granted"
    if all(s.outcome is StepOutcome.OK and s.verified for s in view.steps):
        return "Break-glass ended: rolled back and verified"
    return "Break-glass ended: rollback NOT fully verified"


def kill_result(view: KillResultView) -> Card:
    """What was revoked, each rollback step and its check, and loudly what is still granted."""
    loud: tuple[Part, ...] = ()
    if view.still_privileged:
        banner = Banner("STILL PRIVILEGED: remove this access by hand now.", Tone.DANGER)
        remaining = w.items(view.still_privileged, "more: see the audit log NOW")
        loud = (banner, Bullets("Still granted", remaining, Tone.DANGER))
    steps = tuple(_step_line(s) for s in view.steps[: w.MAX_ITEMS]) or ("no rollback steps ran",)
    parts = (
        *loud,
        *_simulated(view.action),
        Facts((Fact("Ended", _ended_by(view)), *w.action_facts(view.action)[1:])),
        Bullets("Revoked", w.items(view.revoked) or ("nothing",)),
        Bullets("Rollback", steps, Tone.NORMAL if not view.still_privileged else Tone.DANGER),
        Facts((Fact("Job", w.item(view.job_id), mono=True),)),
    )
    title = _kill_title(view)
    return Card(f"{title} (job {view.job_id})", parts, title)


VERIFY_COMMAND = "breakglass verify {bundle} --trust trust.json"


def audit_summary(view: AuditSummaryView) -> Card:
    """Who asked, who approved, what ran, when, the outcome, and how to check the bundle."""
    approvers = w.items(tuple(f"{w.named(a.by)} at {w.at(a.at)}" for a in view.approvals))
    verified = "yes" if view.rollback_verified else "NO"
    loud = () if view.rollback_verified else (Banner("Rollback NOT verified", Tone.DANGER),)
    bundle = clean_line(view.bundle_file, w.NAME_LIMIT)
    parts = (
        *loud,
        *_simulated(view.action),
        Facts(
            (
                Fact("Outcome", w.item(view.outcome)),
                Fact("Rollback verified", verified),
                Fact("Asked by", w.named(view.requester)),
                Fact("When", f"{w.at(view.started_at)} to {w.at(view.ended_at)}"),
                *w.action_facts(view.action),
            )
        ),
        Bullets("Approved by", approvers or ("nobody",)),
        Bullets("What ran", w.items(view.ran) or ("nothing ran",)),
        *((Note(clean_line(view.activity, w.TEXT_LIMIT)),) if view.activity else ()),
        Facts(
            (
                Fact("Bundle hash", w.item(view.bundle_hash_b64u), mono=True),
                Fact("Verify offline", VERIFY_COMMAND.format(bundle=bundle), mono=True),
                Fact("Job", w.item(view.job_id), mono=True),
            )
        ),
    )
    title = "Break-glass audit summary"
    links = (Link("Open the report", view.report_url),) if view.report_url else ()
    return Card(f"{title} (job {view.job_id})", parts, title, links=links)


Out = TypeVar("Out")  # what a platform's renderer makes of a card (its JSON)

STEP_UP_WORDS = (
    "Approving this plan needs a fresh sign-in with MFA. The approval counts once you have "
    "signed in; the card then shows it. This button is yours alone: do not share it."
)


def step_up_sign_in(job_id: str, url: str) -> Card:
    """The private answer to an approver's click on a plan that needs step-up."""
    summary = f"Sign in with MFA to approve job {job_id}"
    return Card(summary, (Note(STEP_UP_WORDS),), links=(Link("Sign in to approve", url),))


class Drawn(Generic[Out]):
    """The moments every platform draws as they are, each through the platform's ``render``.

    A renderer keeps its own function only where its platform changes the card (the approval
    buttons, Slack's headerless receipt lines, the forms).
    """

    def __init__(self, render: Callable[[Card], Out]) -> None:
        self._render = render

    def approval_result(self, view: ApprovalResultView) -> Out:
        return self._render(approval_result(view))

    def status(self, view: StatusView, now: datetime) -> Out:
        return self._render(status(view, now))

    def announcement(self, view: Announcement) -> Out:
        return self._render(announcement(view))

    def kill_result(self, view: KillResultView) -> Out:
        return self._render(kill_result(view))

    def audit_summary(self, view: AuditSummaryView) -> Out:
        return self._render(audit_summary(view))
