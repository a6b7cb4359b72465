"""Card buttons and the request form: ``Action.Execute`` (and its ``Action.Submit`` fallback).

Each press becomes a ``CardAction`` (which carries no authority) and the presser's resolved
identity; ``adapters.chat_actions.act`` decides, deduplicating on (job, person, decision,
plan), so a re-delivered invoke, even with a new activity id, counts once and gets the same
card back. The answer is the card as this person may now see it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from adapters.chat_actions import act, request_from_values
from adapters.entra_signin.jobs import sign_in_target
from adapters.teams import render
from adapters.teams.config import conversation_base
from adapters.teams.delivery import PLATFORM, STATUS
from adapters.teams.turns import Handler, Reply, Turn, refused
from cards import teams
from cards.actions import CardAction, CardActionError, Verb, from_teams
from cards.forms import RequestFormError, request_from_teams
from engine.errors import CommandRefused, JobNotFound, describe
from engine.job import Actor
from engine.outcome import Outcome
from engine.ports import MessageRef

log = logging.getLogger("breakglass.teams.actions")
APPROVAL_VERBS = frozenset({Verb.APPROVE, Verb.DENY, Verb.WITHDRAW, Verb.REFRESH})
NOT_INCIDENT = "Break-glass works only in the configured incident channels."
NO_USER = "Teams did not say who pressed this; nothing was done."


def refusal_text(outcome: Outcome) -> str:
    return f"Not done. {describe(CommandRefused(outcome.reason, outcome.detail))}"


@dataclass
class Actions(Handler):
    target_tenant_id: str  # where the requested access is granted

    async def on_card(self, turn: Turn, verb: object, data: object) -> Reply:
        """A job card's button: approve, deny, withdraw, refresh, kill, done, extend."""
        try:
            action = from_teams(verb, data)
        except CardActionError as exc:
            return refused(
                turn, "card action", f"INVALID_ACTION: {exc}", "That button is not valid."
            )
        if not self.config.is_incident(turn.conversation_id):
            return refused(turn, action.verb.value, "NOT_AN_INCIDENT_CHANNEL", NOT_INCIDENT)
        actor = self.actor(turn)
        if actor is None:
            return refused(turn, action.verb.value, "NO_USER", NO_USER)
        return await self._decide(turn, action, actor)

    async def _decide(self, turn: Turn, action: CardAction, actor: Actor) -> Reply:
        try:
            outcome = await self.background.within_budget(act(self.ports.jobs, action, actor))
            job = await self.ports.jobs.load(action.job_id)
        except JobNotFound:
            return refused(turn, action.verb.value, "UNKNOWN_JOB", "There is no such job.")
        url = sign_in_target(outcome) if outcome is not None else None
        if url is not None:  # the invoke answer: only the person who clicked sees it
            return teams.step_up_card(action.job_id, url)
        if outcome is not None and not outcome.ok:
            return refusal_text(outcome)
        scene = self.chat.scene(self.ports.clock())
        if action.verb in APPROVAL_VERBS:
            return render.approval_for(job, actor, scene)
        return render.status(job, scene)

    async def on_form(self, turn: Turn, data: object) -> Reply:
        """The request form's submit: a new job, or the form again with what was wrong."""
        if not self.config.is_incident(turn.conversation_id):
            return refused(turn, "request", "NOT_AN_INCIDENT_CHANNEL", NOT_INCIDENT)
        actor = self.actor(turn)
        if actor is None:
            return refused(turn, "request", "NO_USER", NO_USER)
        max_minutes = self.ports.limits.max_minutes
        try:
            values, _ = request_from_teams(data)
        except RequestFormError as exc:
            refused(turn, "request", f"FORM_INVALID: {exc}", "")
            return render.request_form(max_minutes, error=describe(exc))
        job_id, key = request_ids(turn, actor, data)
        await self._claim_status_card(turn, job_id)
        request = request_from_values(values, actor, self.target_tenant_id, turn.channel(), job_id)
        outcome = await self.background.within_budget(self.ports.jobs.request(request, key))
        if outcome is not None and not outcome.ok:
            return render.request_form(max_minutes, values, refusal_text(outcome))
        return await self._status_or_wait(job_id)

    async def _claim_status_card(self, turn: Turn, job_id: str) -> None:
        """The form's own message becomes the job's status card (updated in place)."""
        if not turn.reply_to_id:
            return
        doc = {"reference": turn.channel()["reference"], "activity_id": turn.reply_to_id}
        await self.ports.store.put_message_ref(MessageRef(job_id, PLATFORM, STATUS, doc))

    async def _status_or_wait(self, job_id: str) -> Reply:
        try:
            job = await self.ports.jobs.load(job_id)
        except JobNotFound:
            return f"Recording your request as job {job_id}; this card updates when it is in."
        return render.status(job, self.chat.scene(self.ports.clock()))


def request_ids(turn: Turn, actor: Actor, data: object) -> tuple[str, str]:
    """A job id and idempotency key fixed by the form message: Teams may deliver the same
    submit again with a new activity id, and a form already used (by anyone) must not make
    a second job whose status card would be that same message. Without a form message id,
    the person and what they typed fix it instead."""
    if turn.reply_to_id:
        form = f"form:{turn.reply_to_id}"
    else:
        form = f"{actor.chat_identity}|{json.dumps(data, sort_keys=True, default=str)}"
    seed = f"{conversation_base(turn.conversation_id)}|{form}"
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"bg-{digest[:12]}", f"teams:request:{digest[:32]}"
