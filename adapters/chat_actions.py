"""Platform-neutral handling of what people do on cards and forms.

Slack, Teams and the console all turn a click into a ``CardAction`` (which carries no
authority) and a chat identity; this module picks the command and the idempotency key and
asks the job service through the ``JobCommands`` port. Keys are (job, person, decision, plan) so a
re-delivered click, even with a new platform event id, counts once.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cards.actions import CardAction, Verb
from cards.views import RequestValues, Template
from engine.chat_ports import JobCommands
from engine.job import Actor
from engine.lifecycle import Approve, Command, Deny, Done, Extend, Kill, Request, Withdraw
from engine.outcome import Outcome

EXTEND_MINUTES = 15


def new_job_id() -> str:
    return "bg-" + secrets.token_hex(5)


def command_for(action: CardAction, actor: Actor) -> Command | None:
    plan = action.plan_hash or ""
    commands: dict[Verb, Command] = {
        Verb.APPROVE: Approve(actor, plan),
        Verb.DENY: Deny(actor, plan),
        Verb.WITHDRAW: Withdraw(actor),
        Verb.KILL: Kill(actor),
        Verb.DONE: Done(actor),
        Verb.EXTEND: Extend(actor, EXTEND_MINUTES),
    }
    return commands.get(Verb(action.verb))


def action_key(action: CardAction, actor: Actor) -> str:
    who = actor.principal or actor.chat_identity
    return f"act:{action.job_id}:{who}:{action.verb}:{action.plan_hash or ''}"


async def act(jobs: JobCommands, action: CardAction, actor: Actor) -> Outcome:
    """Apply a card action for ``actor``. ``refresh`` changes nothing and reports the state."""
    command = command_for(action, actor)
    if command is None:
        job = await jobs.load(action.job_id)
        return Outcome(True, job.job_id, {"state": job.state})
    outcome = await jobs.command(action.job_id, command, key=action_key(action, actor))
    if outcome.replayed:
        # A press counted before: say where the job is now, not where it was then (an
        # approval pressed again after a Kill answered "pending_approval").
        job = await jobs.load(action.job_id)
        outcome = replace(outcome, result={**outcome.result, "state": job.state})
    return outcome


def request_from_values(
    values: RequestValues,
    actor: Actor,
    tenant_id: str,
    channel: Mapping[str, Any],
    job_id: str | None = None,
) -> Request:
    if values.template is Template.CA_EXCLUSION:
        targets = {
            "tenant_id": tenant_id,
            "policy_id": values.resource,
            "group_id": values.principal,
        }
    else:
        targets = {
            "tenant_id": tenant_id,
            "principal_id": values.principal,
            "role_definition_id": values.resource,
        }
    return Request(
        job_id=job_id or new_job_id(),
        actor=actor,
        template=values.template.value,
        targets=targets,
        minutes=values.duration_minutes,
        justification=values.justification,
        ticket=values.ticket,
        channel=dict(channel),
    )
