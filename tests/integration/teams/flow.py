"""Steps of a break-glass job as people do them in Teams, shared by the tests."""

from __future__ import annotations

import json
from typing import Any

from engine.canonical import strict_loads
from engine.job import Job
from tests.integration.teams.conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    USER_ADMIN,
    Person,
    TeamsEnv,
)
from tests.integration.teams.fakes import Call

JUSTIFICATION = "INC-7: mail flow down, need User Administrator to reset connectors"


def form_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "form": "request",
        "context": "",
        "template": "entra-role",
        "principal": DAVE,
        "resource": USER_ADMIN,
        "duration_minutes": "30",
        "justification": JUSTIFICATION,
        "ticket": "INC-7",
    }
    return data | changes


def actions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's Action.Execute buttons by verb."""
    return {a["verb"]: a for a in card.get("actions", []) if a.get("type") == "Action.Execute"}


def invoke_card(body: Any) -> dict[str, Any]:
    assert body["statusCode"] == 200, body
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    return body["value"]  # type: ignore[no-any-return]


async def press(
    env: TeamsEnv, person: Person, card: dict[str, Any], verb: str, reply_to: str, **kw: Any
) -> tuple[int, Any]:
    """Press the card's ``verb`` button as ``person`` (the invoke Teams sends)."""
    button = actions(card)[verb] if verb != "refresh" else card["refresh"]["action"]
    activity = env.invoke(person, verb, button["data"], reply_to, **kw)
    return await env.post(activity)


async def open_form(env: TeamsEnv, person: Person = ALICE) -> Call:
    before = len(env.connector.calls)
    status, _ = await env.post(env.message(person, "request"))
    assert status == 202
    form = env.connector.calls[before]
    assert form.card is not None
    return form


async def requested(env: TeamsEnv, **changes: Any) -> tuple[Job, str]:
    """Alice asks for the form and submits it; returns the job and the status message id."""
    form = await open_form(env)
    form_id = env.connector.id_of(form)
    data = form_data(**changes)
    status, body = await env.post(env.invoke(ALICE, "request", data, form_id))
    assert status == 200, body
    card = invoke_card(body)
    assert "Break-glass" in json.dumps(card), card
    await env.settle()
    jobs = await env.service.open_jobs()
    assert len(jobs) == 1, jobs
    return jobs[0], form_id


def approval_message(env: TeamsEnv, revision: int = 0) -> tuple[str, dict[str, Any]]:
    """The shared approval card: the id of its message, and its latest content."""
    posted = [c for c in env.connector.titled("Approval needed") if c.method == "POST"]
    assert posted, "no approval card was posted"
    message_id = env.connector.id_of(posted[revision])
    latest = posted[revision].card
    for call in env.connector.updates(message_id):
        latest = call.card
    assert latest is not None
    return message_id, latest


async def approve(env: TeamsEnv, person: Person, revision: int = 0, **kw: Any) -> dict[str, Any]:
    """Refresh (as the client does) and press Approve; returns the card ``person`` gets."""
    message_id, shared = approval_message(env, revision)
    status, body = await press(env, person, shared, "refresh", message_id, trigger="automatic")
    assert status == 200, body
    mine = invoke_card(body)
    status, body = await press(env, person, mine, "approve", message_id, **kw)
    assert status == 200, body
    await env.settle()
    return invoke_card(body)


async def active(env: TeamsEnv) -> tuple[Job, str]:
    job, status_id = await requested(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    return await env.service.load(job.job_id), status_id


def bundle_from(env: TeamsEnv) -> dict[str, Any]:
    """The proof bundle as posted: the bundle-json runs of every part, joined."""
    parts = [c.card for c in env.connector.titled("Proof bundle") if c.card is not None]
    assert parts, "no proof bundle was posted"
    text = ""
    for card in parts:
        block = next(b for b in card["body"] if b.get("id") == "bundle-json")
        text += "".join(run["text"] for run in block["inlines"])
    return strict_loads(text)  # type: ignore[no-any-return]
