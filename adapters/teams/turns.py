"""What every inbound handler shares: the parsed turn, the reply type, bounded waiting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from microsoft_agents.activity import Activity, ConversationReference

from adapters.teams.config import TeamsConfig
from adapters.teams.connector import reference_doc
from adapters.teams.delivery import TeamsChat
from adapters.teams.people import People, TeamsUser, user_of
from adapters.teams.render import Json
from engine.chat_ports import ChatPorts
from engine.job import Actor

log = logging.getLogger("breakglass.teams.turns")
T = TypeVar("T")
Reply = Json | str  # a card, or plain words
INVOKE_BUDGET_SECONDS = 3.0  # Teams gives up on an invoke after a few seconds


@dataclass(frozen=True)
class Turn:
    """The parts of an inbound activity the handlers use."""

    conversation_id: str
    user: TeamsUser | None
    activity_id: str | None
    reply_to_id: str | None
    reference: ConversationReference

    @classmethod
    def of(cls, activity: Activity) -> Turn:
        conversation = activity.conversation.id if activity.conversation else ""
        return cls(
            conversation_id=str(conversation or ""),
            user=user_of(activity.from_property),
            activity_id=activity.id,
            reply_to_id=activity.reply_to_id,
            reference=activity.get_conversation_reference(),
        )

    def who(self) -> str:
        return self.user.user_id if self.user is not None else "(nobody)"

    def channel(self) -> dict[str, Any]:
        """What a job keeps about where it was asked for (``Request.channel``)."""
        return {
            "platform": "teams",
            "conversation_id": self.conversation_id,
            "reference": reference_doc(self.reference),
        }


def refused(turn: Turn, what: str, reason: str, text: str) -> str:
    """Log a refusal (the audit trail for things that never reach a job) and say why."""
    log.warning(
        "teams: refused %s from %s in %s: %s", what, turn.who(), turn.conversation_id[:80], reason
    )
    return text


class Background:
    """Runs work on its own task and waits for it only so long: an invoke must be answered
    well inside Teams' timeout, while the work (chat deliveries, the executor) goes on."""

    def __init__(self, budget: float = INVOKE_BUDGET_SECONDS) -> None:
        self.budget = budget
        self.tasks: set[asyncio.Task[Any]] = set()

    async def within_budget(self, work: Awaitable[T]) -> T | None:
        """The work's result, or None when it is still running after the budget."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        done, _ = await asyncio.wait({task}, timeout=self.budget)
        return task.result() if task in done else None

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("teams: background work failed: %s", type(task.exception()).__name__)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


@dataclass
class Handler:
    """What the inbound handlers (card actions, typed commands) are built from."""

    config: TeamsConfig
    ports: ChatPorts
    people: People
    chat: TeamsChat
    background: Background

    def actor(self, turn: Turn) -> Actor | None:
        """Who pressed or typed (None when Teams did not say)."""
        return self.people.actor(turn.user) if turn.user is not None else None
