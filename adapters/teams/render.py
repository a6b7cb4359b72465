"""A job as the Adaptive Cards a Teams user sees: per viewer, per moment, and the proof bundle.

Everything here is pure (the time is the scene's ``now``); the card JSON comes from
``cards.teams`` and the views from ``cards.job_views``, so Teams shows exactly what Slack shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from microsoft_agents.activity import Activity, ActivityTypes, Attachment

from cards import teams
from cards.job_views import approval_result_view, approval_view, open_plan, status_view
from cards.layout import Card, Note
from cards.text import teams_markdown
from cards.views import RequestFormView, RequestValues
from engine.canonical import jcs
from engine.job import ACTIVE, PENDING, Actor, Job, Plan
from engine.lifecycle import may_approve
from engine.timeutil import parse_iso

Json = dict[str, Any]
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
BUNDLE_BLOCK_ID = "bundle-json"  # the RichTextBlock whose runs, joined, are the bundle's JSON
BUNDLE_PART_BYTES = 22 * 1024  # of escaped JSON text per card, well under Teams' ~28 KB
BUNDLE_RUN_CHARS = 2000


@dataclass(frozen=True)
class Scene:
    """What every card of a job is drawn with."""

    names: Mapping[str, str]
    approvers: frozenset[str]  # directory principals in the approver group
    now: datetime
    user_ids: Callable[[Collection[str]], tuple[str, ...]]  # principals -> Teams 29: ids


def card_message(card: Json) -> Activity:
    attachment = Attachment(content_type=ADAPTIVE_CARD, content=card)
    summary = str(card.get("fallbackText", ""))[:200]
    return Activity(type=ActivityTypes.message, attachments=[attachment], summary=summary)


def text_message(text: str) -> Activity:
    # Plain text: nothing in our replies (reasons, ids) is ever read as markdown.
    return Activity(type=ActivityTypes.message, text=text, text_format="plain")


def digest(card: Json) -> str:
    """Identifies a card's content, so an unchanged card is not sent again."""
    return hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()[:32]


# --- approvals --------------------------------------------------------------------------------


def awaiting(job: Job) -> bool:
    """Approvals are being collected: the request, or an extension of an active window."""
    return job.state == PENDING or (job.state == ACTIVE and job.extension is not None)


def eligible(job: Job, actor: Actor | None, scene: Scene) -> bool:
    principal = actor.principal if actor is not None else None
    return principal is not None and principal in eligible_principals(job, scene)


def eligible_principals(job: Job, scene: Scene) -> frozenset[str]:
    return frozenset(may_approve(scene.approvers, job.requester.principal, job.request))


def approval_for(job: Job, viewer: Actor | None, scene: Scene) -> Json:
    """The approval card as ``viewer`` may see it: buttons only for a designated approver."""
    plan = open_plan(job)
    if not awaiting(job):
        return approval_closed(job, plan.revision, scene)
    user_ids = scene.user_ids(eligible_principals(job, scene))
    view = approval_view(job, scene.names, scene.now, user_ids)
    if viewer is not None and eligible(job, viewer, scene):
        approved = viewer.principal in plan.approvers()
        return teams.approval_card(view, for_approver=True, viewer_approved=approved)
    return teams.approval_card(view, for_approver=False)


def approval_shared(job: Job, revision: int, scene: Scene) -> Json:
    """The variant in the shared message: read-only, refreshing for the approvers."""
    if awaiting(job) and open_plan(job).revision == revision:
        return approval_for(job, None, scene)
    return approval_closed(job, revision, scene)


def _plan_of(job: Job, revision: int) -> Plan | None:
    for plan in (job.plan, job.extension):
        if plan is not None and plan.revision == revision:
            return plan
    return None


def approval_closed(job: Job, revision: int, scene: Scene) -> Json:
    """No more decisions on ``revision``: what was decided, without buttons."""
    plan = _plan_of(job, revision)
    last = plan.decisions[-1] if plan is not None and plan.decisions else None
    if plan is not None and last is not None:
        required = int(plan.payload["metadata"]["breakglass"]["approvals"]["min_approvers"])
        if last.decision == "deny" or len(plan.approvers()) >= required:
            view = approval_result_view(
                job, scene.names, last.decision, last.principal, parse_iso(last.at)
            )
            return teams.moment.approval_result(view)
    note = Note(f"This approval request is closed; the job is {job.state}.")
    title = "Approval closed"
    return teams.render(Card(f"{title} (job {job.job_id})", (note,), title))


# --- status and the request form --------------------------------------------------------------


def status(job: Job, scene: Scene) -> Json:
    return teams.moment.status(status_view(job, scene.names, scene.now), scene.now)


def request_form(
    max_minutes: int, values: RequestValues | None = None, error: str | None = None
) -> Json:
    view = RequestFormView(max_duration_minutes=max_minutes, values=values, error=error)
    return teams.request_form_card(view)


# --- the proof bundle -------------------------------------------------------------------------


def bundle_cards(bundle: Mapping[str, Any], file_name: str) -> list[Json]:
    """The bundle's canonical JSON, split over as many cards as Teams' size limit needs.

    Joining the text runs of every part's ``bundle-json`` block, in order, gives the exact
    bytes of ``file_name``; ``breakglass verify`` checks them offline.
    """
    text = jcs(dict(bundle)).decode()
    chunks = _split_escaped(text, BUNDLE_PART_BYTES)
    bundle_hash = str(bundle.get("payload_hash_b64u", ""))
    return [
        _bundle_card(chunk, index, len(chunks), file_name, bundle_hash)
        for index, chunk in enumerate(chunks, 1)
    ]


def _split_escaped(text: str, budget: int) -> list[str]:
    """Pieces of ``text`` whose JSON-escaped size stays within ``budget`` bytes each."""
    pieces, start, used = [], 0, 0
    for index, char in enumerate(text):
        cost = len(json.dumps(char)) - 2
        if used + cost > budget:
            pieces.append(text[start:index])
            start, used = index, 0
        used += cost
    pieces.append(text[start:])
    return pieces


def _bundle_card(chunk: str, index: int, count: int, file_name: str, bundle_hash: str) -> Json:
    title = f"Proof bundle {file_name} (part {index} of {count})"
    runs = [
        {"type": "TextRun", "text": chunk[i : i + BUNDLE_RUN_CHARS], "fontType": "Monospace"}
        for i in range(0, len(chunk), BUNDLE_RUN_CHARS)
    ]
    how = f"Bundle hash {bundle_hash}. Join the JSON text of all {count} part(s) in order."
    body: list[Json] = [
        {"type": "TextBlock", "text": teams_markdown(title, 200), "weight": "Bolder", "wrap": True},
        {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": how, "isSubtle": True}]},
        {"type": "RichTextBlock", "id": BUNDLE_BLOCK_ID, "inlines": runs},
    ]
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": teams.SCHEMA_URL,
        "version": teams.VERSION,
        "fallbackText": title,
        "msteams": {"width": "Full"},
        "body": body,
    }
    return teams.check_size(card)
