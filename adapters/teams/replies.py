"""Answers to typed commands, posted after the HTTP turn has been answered.

The Bot Framework gives a bot 15 s to answer ``POST /api/messages``; a reply sent inside the
turn waits for the Bot Connector (10 s per attempt, retries), so a slow Teams made the
channel think the bot had failed. Replies are therefore posted from their own task (the
invoke budget's :class:`Background`): the turn waits for them only within the budget, and
what Teams did not take waits here and goes out with the outbox drain, in order.

They wait in memory, not in the store's outbox: the chat ports give an adapter no way to
enqueue (``engine.chat_ports.ChatStore`` lacks ``OutboxWriter``), and a reply to a question
typed long ago is noise, so one older than :data:`REPLY_SHELF_LIFE` is dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from microsoft_agents.activity import Activity, ConversationReference
from microsoft_agents.hosting.core import ClaimsIdentity

from adapters.teams import render
from adapters.teams.connector import Connector, TeamsRefused
from adapters.teams.turns import Background, Reply
from engine.errors import ChatError

log = logging.getLogger("breakglass.teams.replies")
MAX_WAITING = 100  # replies kept while Teams is down; the oldest go first when full
REPLY_SHELF_LIFE = timedelta(minutes=15)


@dataclass(frozen=True)
class Answer:
    """One reply to a typed command: where it goes, what it says, as whom."""

    reference: ConversationReference
    reply_to: str | None  # the typed message: the answer goes in its thread
    message: Activity
    identity: ClaimsIdentity | None
    asked_at: datetime


def message_of(reply: Reply) -> Activity:
    return render.text_message(reply) if isinstance(reply, str) else render.card_message(reply)


class TypedReplies:
    def __init__(self, connector: Connector, background: Background) -> None:
        self.connector = connector
        self.background = background
        self.waiting: deque[Answer] = deque(maxlen=MAX_WAITING)

    async def answer(self, answers: Sequence[Answer]) -> None:
        """Post ``answers`` in order on their own task; return when they are out or when the
        budget is spent (then they go on)."""
        await self.background.within_budget(self._post_in_order(answers))

    async def _post_in_order(self, answers: Sequence[Answer]) -> None:
        for position, answer in enumerate(answers):
            try:
                await self._post(answer, probe=False)
            except ChatError as exc:
                if _refused_for_good(exc):
                    continue  # Teams will never take it: the next one goes on
                log.warning("teams: reply not delivered (%s); it waits", exc)
                self.waiting.extend(answers[position:])
                return

    async def deliver_waiting(self, now: datetime) -> int:
        """Post the replies Teams missed, oldest first; returns how many went out."""
        sent = 0
        while self.waiting:
            answer = self.waiting[0]
            if now - answer.asked_at > REPLY_SHELF_LIFE:
                self.waiting.popleft()
                log.info("teams: reply dropped: asked more than %s ago", REPLY_SHELF_LIFE)
                continue
            try:
                await self._post(answer, probe=True)
            except ChatError as exc:
                if _refused_for_good(exc):
                    self.waiting.popleft()
                    continue
                log.info("teams: replies still wait (%s): %d", exc, len(self.waiting))
                break
            self.waiting.popleft()
            sent += 1
        return sent

    async def _post(self, answer: Answer, *, probe: bool) -> None:
        message = answer.message.model_copy(deep=True)  # the connector stamps what it sends
        if answer.reply_to:
            await self.connector.reply(
                answer.reference, answer.reply_to, message, probe=probe, identity=answer.identity
            )
        else:
            await self.connector.send(
                answer.reference, message, probe=probe, identity=answer.identity
            )


def _refused_for_good(exc: ChatError) -> bool:
    """A reply Teams will never take (its message deleted, too large): one WARNING, dropped."""
    if isinstance(exc, TeamsRefused) and exc.final:
        log.warning("teams: reply dropped: %s (not retried)", exc)
        return True
    return False
