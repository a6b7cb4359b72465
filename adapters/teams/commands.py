"""Typed commands: ``breakglass request | status | kill [job] | help``, with or without an
@mention of the bot (Teams puts ``<at>name</at>`` into the text; it is stripped)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.chat_actions import act
from adapters.teams import render
from adapters.teams.actions import NO_USER, NOT_INCIDENT, refusal_text
from adapters.teams.config import conversation_base
from adapters.teams.turns import Handler, Reply, Turn, refused
from cards.actions import CardAction, CardActionError, Verb
from engine.errors import JobNotFound
from engine.job import Job

MENTION = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
MAX_TEXT = 500
MAX_STATUS_CARDS = 5
HELP = (
    "Break-glass commands (mention the bot in a channel):\n"
    "- request: open the request form (two approvers, a hard time window, rollback)\n"
    "- status: the status cards of this channel's open jobs\n"
    "- kill [job]: stop a job now and roll it back (anyone here may)\n"
    "- help: this text"
)


@dataclass(frozen=True)
class TextCommand:
    name: str
    argument: str = ""


def parse(text: str | None) -> TextCommand:
    words = MENTION.sub(" ", (text or "")[:MAX_TEXT]).split()
    if words and words[0].lower().lstrip("/") == "breakglass":
        words = words[1:]
    if not words:
        return TextCommand("help")
    return TextCommand(words[0].lower(), words[1] if len(words) > 1 else "")


class Commands(Handler):
    async def on_text(self, turn: Turn, text: str | None) -> list[Reply]:
        command = parse(text)
        if command.name not in ("request", "status", "kill"):
            return [HELP]
        if not self.config.is_incident(turn.conversation_id):
            return [refused(turn, command.name, "NOT_AN_INCIDENT_CHANNEL", NOT_INCIDENT)]
        if command.name == "request":
            return [render.request_form(self.ports.limits.max_minutes)]
        if command.name == "status":
            return await self._status(turn)
        return [await self._kill(turn, command.argument)]

    async def _open_here(self, turn: Turn) -> list[Job]:
        here = conversation_base(turn.conversation_id)
        return [
            job
            for job in await self.ports.jobs.open_jobs()
            if job.channel.get("platform") == "teams"
            and conversation_base(str(job.channel.get("conversation_id", ""))) == here
        ]

    async def _status(self, turn: Turn) -> list[Reply]:
        jobs = await self._open_here(turn)
        if not jobs:
            return ["No break-glass job is open in this channel."]
        scene = self.chat.scene(self.ports.clock())
        return [render.status(job, scene) for job in jobs[:MAX_STATUS_CARDS]]

    async def _kill(self, turn: Turn, job_id: str) -> Reply:
        if turn.user is None:
            return refused(turn, "kill", "NO_USER", NO_USER)
        if not job_id:
            jobs = await self._open_here(turn)
            if len(jobs) != 1:
                names = ", ".join(j.job_id for j in jobs) or "none"
                return f"Name the job to kill: kill <job>. Open here: {names}."
            job_id = jobs[0].job_id
        try:
            action = CardAction(Verb.KILL, job_id)
        except CardActionError:
            return refused(turn, "kill", "INVALID_JOB_ID", "That is not a job id.")
        actor = self.people.actor(turn.user)
        try:
            outcome = await self.background.within_budget(act(self.ports.jobs, action, actor))
        except JobNotFound:
            return refused(turn, "kill", "UNKNOWN_JOB", "There is no such job.")
        if outcome is not None and not outcome.ok:
            return refusal_text(outcome)
        return f"Kill recorded for job {job_id}: the token is revoked and the rollback runs."
