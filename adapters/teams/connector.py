"""Posting to Teams outside a turn: through the SDK's ``continue_conversation`` and its
connector client, with bounded retries, mapping every failure to ``ChatError``.

After a failure the connector fails fast for ``RetryPolicy.cooldown`` seconds: events wait in
the outbox instead of each one waiting for a Teams that is down, so a job's effects (and
with them its rollback) are never held up by chat. ``probe=True`` tries anyway (the outbox
drain uses it to find out whether Teams is back).

A refusal is not an outage: Teams answered, and said no to this one request (400, 403, 404,
413, with a documented code such as ``MessageSizeTooBig``, see docs/teams.md §8). It raises
:class:`TeamsRefused` and starts no cooldown, so one message Teams will never take does not
hold up every other job's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from microsoft_agents.activity import Activity, ConversationReference
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import ClaimsIdentity, ConnectorClientBase, TurnContext

from adapters.teams.retry import RetryPolicy, with_retries
from engine.errors import ChatError

log = logging.getLogger("breakglass.teams.connector")
# The 4xx answers of "Status codes from bot conversational APIs" that Teams says not to retry:
# they refuse this request (or this bot in this conversation), Teams itself is up.
REFUSED_STATUSES = frozenset({400, 403, 404, 413})
ACTIVITY_NOT_FOUND = "ActivityNotFoundInConversation"
_CODE = re.compile(r"[A-Za-z][A-Za-z ]{0,63}")


class TeamsRefused(ChatError):
    """Teams refused this request (``status``, with its documented ``code`` when it gave one).

    ``gone``: the message named (replied to or updated) is no longer in the conversation (404
    ``ActivityNotFoundInConversation``: deleted); ``final``: this message will never be
    taken as it is (400, 413, or gone); else (403) the bot may not post in the conversation
    now, and may be let in again.
    """

    def __init__(self, status: int, code: str) -> None:
        said = f"HTTP {status} {code}".rstrip()
        super().__init__(f"Teams refused it: {said}")
        self.status = status
        self.code = code

    @property
    def gone(self) -> bool:
        return self.status == 404 and self.code == ACTIVITY_NOT_FOUND

    @property
    def final(self) -> bool:
        return self.status in (400, 413) or self.gone


Operation = Callable[[ConnectorClientBase, str], Awaitable[Any]]


def reference_from(doc: Mapping[str, Any]) -> ConversationReference:
    return ConversationReference.model_validate(dict(doc))


def reference_doc(reference: ConversationReference) -> dict[str, Any]:
    """A reference as JSON, without the user who happened to start the turn."""
    doc = reference.model_dump(mode="json", by_alias=True, exclude_none=True)
    for personal in ("user", "activityId", "locale", "requestId"):
        doc.pop(personal, None)
    return doc


@dataclass(eq=False)
class Connector:
    adapter: CloudAdapter
    app_id: str
    policy: RetryPolicy
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    _down_until: float = field(default=0.0, init=False)

    async def send(
        self,
        reference: ConversationReference,
        activity: Activity,
        *,
        probe: bool = False,
        identity: ClaimsIdentity | None = None,
    ) -> str:
        """Post a new message to the reference's conversation; returns its activity id.

        ``identity``: the verified claims of the inbound turn this answers (a typed command's
        reply), so the post goes out as that turn's own replies would; else the bot's app id.
        """

        async def op(client: ConnectorClientBase, conversation: str) -> Any:
            return await client.conversations.send_to_conversation(conversation, activity)

        return await self._posted(reference, activity, op, probe, identity)

    async def reply(
        self,
        reference: ConversationReference,
        reply_to: str,
        activity: Activity,
        *,
        probe: bool = False,
        identity: ClaimsIdentity | None = None,
    ) -> str:
        """Post ``activity`` in the thread of the message ``reply_to``; returns its id."""

        async def op(client: ConnectorClientBase, conversation: str) -> Any:
            activity.reply_to_id = reply_to
            return await client.conversations.reply_to_activity(conversation, reply_to, activity)

        return await self._posted(reference, activity, op, probe, identity)

    async def update(
        self,
        reference: ConversationReference,
        activity_id: str,
        activity: Activity,
        *,
        probe: bool = False,
    ) -> None:
        """Replace the message ``activity_id`` in place."""
        activity.id = activity_id

        async def op(client: ConnectorClientBase, conversation: str) -> Any:
            return await client.conversations.update_activity(conversation, activity_id, activity)

        await self.run(reference, activity, op, probe)

    async def _posted(
        self,
        reference: ConversationReference,
        activity: Activity,
        op: Operation,
        probe: bool,
        identity: ClaimsIdentity | None,
    ) -> str:
        response = await self.run(reference, activity, op, probe, identity)
        activity_id = getattr(response, "id", None)
        if not activity_id:
            raise ChatError("Teams did not return the new message's id")
        return str(activity_id)

    async def run(
        self,
        reference: ConversationReference,
        activity: Activity,
        op: Operation,
        probe: bool,
        identity: ClaimsIdentity | None = None,
    ) -> Any:
        if not probe and self.clock() < self._down_until:
            raise ChatError("Teams was unreachable moments ago; queued for later")
        activity.apply_conversation_reference(reference)  # stored references name no message
        try:
            result = await self._continue(reference, activity, op, identity)
        except Exception as exc:
            refused = refusal(exc)
            if refused is not None:  # Teams is up and answered: no cooldown for the others
                _log_refusal(refused)
                raise refused from exc
            self._down_until = self.clock() + self.policy.cooldown
            _log_failure(exc)
            raise ChatError(f"Teams delivery failed: {_describe(exc)}") from exc
        self._down_until = 0.0
        return result

    async def _continue(
        self,
        reference: ConversationReference,
        activity: Activity,
        op: Operation,
        identity: ClaimsIdentity | None,
    ) -> Any:
        conversation = reference.conversation.id
        outcome: list[Any] = []

        async def turn(context: TurnContext) -> None:
            client = context.services.get(ConnectorClientBase)  # type: ignore[type-abstract]
            if client is None:
                raise ChatError("the SDK gave this turn no connector client")
            outcome.append(
                await with_retries(lambda: op(client, conversation), self.policy, self.sleep)
            )

        continuation = reference.get_continuation_activity()
        continuation.id = None  # the SDK's random id would become a replyToId
        if identity is None:
            await self.adapter.continue_conversation(self.app_id, continuation, turn)
        else:
            await self.adapter.continue_conversation_with_claims(identity, continuation, turn)
        return outcome[0]


CREDENTIAL_STATUSES = frozenset({401})


def refusal(exc: BaseException) -> TeamsRefused | None:
    """``exc`` as Teams' refusal of the request, or None (an outage, a timeout, a 5xx...)."""
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status in REFUSED_STATUSES:
        return TeamsRefused(exc.status, error_code(exc.message))
    return None


def error_code(body: str) -> str:
    """The documented code of a Bot Connector error body (``{"error": {"code": ...}}``), or
    '' for anything else. Only the code: the message may repeat what was sent."""
    try:
        error = json.loads(body).get("error")
        code = error.get("code") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and _CODE.fullmatch(code) else ""


def _log_refusal(refused: TeamsRefused) -> None:
    """A 403 shuts the bot out of a conversation (removed from the team, blocked, disabled by
    an admin): an operator must act. The rest concern one message: the caller says which."""
    if refused.status == 403:
        log.error(
            "Teams shut the bot out of this conversation (%s): removed from the team, blocked "
            "or disabled by an admin? Its posts wait in the outbox",
            str(refused).removeprefix("Teams refused it: "),
        )


def _log_failure(exc: BaseException) -> None:
    """A refused credential needs an operator (it will not heal); an outage, throttling or a
    timeout is expected and handled (the event waits in the outbox): the caller says that."""
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status in CREDENTIAL_STATUSES:
        log.error("Teams refused the bot's credentials (HTTP %d): check them", exc.status)


def _describe(exc: BaseException) -> str:
    """Status and type only: bodies and headers may carry tokens or personal data."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, ChatError):
        return str(exc)
    return type(exc).__name__
