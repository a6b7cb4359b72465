"""``TeamsBot``: the Agents SDK application, its HTTP edge, and the Teams ``ChatPort``.

Wiring from ``bot/``::

    teams = TeamsBot(config, chat_ports(service), names=names, target_tenant_id=tenant_id)
    service.notifier.register(teams)          # job events go to Teams
    teams.mount(app)                          # POST /api/messages on the aiohttp application
    ...
    await teams.deliver_queued(service.clock())   # from a timer: what Teams missed

(``chat_ports`` is ``bot.job_commands.chat_ports``: the narrow ports, never the service.)
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from microsoft_agents.activity import AdaptiveCardInvokeResponse, ContentTypes
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AgentApplication,
    AgentAuthConfiguration,
    ApplicationOptions,
    Connections,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.core.authorization import AuthTypes

from adapters.teams.actions import Actions
from adapters.teams.commands import Commands
from adapters.teams.config import TeamsConfig
from adapters.teams.connector import Connector
from adapters.teams.delivery import TeamsChat
from adapters.teams.edge import ROUTE, Edge
from adapters.teams.inbound_auth import InboundAuth, OpenIdKeys
from adapters.teams.people import People
from adapters.teams.quiet_logs import quiet_sdk_logs
from adapters.teams.replies import Answer, TypedReplies, message_of
from adapters.teams.retry import RetryPolicy
from adapters.teams.turns import INVOKE_BUDGET_SECONDS, Background, Reply, Turn
from cards.forms import REQUEST_VERB
from engine.chat_ports import ChatPorts
from engine.errors import BreakGlassError, describe
from engine.ports import ChatEvent

log = logging.getLogger("breakglass.teams")
ANY_VERB = re.compile(r"\S")


def msal_connections(config: TeamsConfig) -> Connections:
    """The SDK's MSAL token provider for outbound calls, from our single-tenant config."""
    certificate = config.certificate_path  # else the client secret
    auth = AgentAuthConfiguration(
        auth_type=AuthTypes.client_secret if certificate is None else AuthTypes.certificate,
        client_id=config.app_id,
        tenant_id=config.tenant_id,
        client_secret=config.app_password if certificate is None else None,
        cert_pfx_file=None if certificate is None else str(certificate),
        authority=config.token_authority,
    )
    return MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": auth})


async def _raise_turn_error(context: TurnContext, error: Exception) -> None:
    # The SDK's default posts the exception text into the conversation. Ours reaches the
    # caller instead: proactive posts turn it into ChatError, inbound turns log it.
    raise error


class TeamsBot:
    """Implements ``engine.ports.ChatPort`` for Teams and answers ``/api/messages``."""

    platform = "teams"

    def __init__(
        self,
        config: TeamsConfig,
        ports: ChatPorts,
        *,
        names: Mapping[str, str] | None = None,
        target_tenant_id: str | None = None,
        connections: Connections | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        invoke_budget: float = INVOKE_BUDGET_SECONDS,
        public_url: str | None = None,
    ) -> None:
        self.config = config
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        connections = connections or msal_connections(config)
        self.adapter = CloudAdapter(connection_manager=connections)
        self.adapter.on_turn_error = _raise_turn_error
        self.people = People(config, ports.people.actor)
        self.connector = Connector(self.adapter, config.app_id, self.retry, sleep)
        self.chat = TeamsChat(ports, self.connector, self.people, names or {})
        self.chat.public_url = public_url  # the audit summary links the report there
        self.background = Background(invoke_budget)
        self.replies = TypedReplies(self.connector, self.background)
        self.clock = ports.clock
        tenant = target_tenant_id or config.tenant_id
        self.actions = Actions(config, ports, self.people, self.chat, self.background, tenant)
        self.commands = Commands(config, ports, self.people, self.chat, self.background)
        self.application = self._application(connections)
        self.keys = OpenIdKeys(config.openid_metadata_url)
        self.edge = Edge(config, InboundAuth(config, self.keys), self.adapter, self.application)
        self.refusals = self.edge.refusals  # inbound requests refused at the edge, by reason
        quiet_sdk_logs()
        if config.dev_disable_auth:
            log.warning(
                "INSECURE: Teams inbound authentication is DISABLED (dev_disable_auth). "
                "Anyone who can reach %s can act as any Teams user. Never run this in production.",
                ROUTE,
            )

    # --- ChatPort -----------------------------------------------------------------------------

    async def deliver(self, event: ChatEvent) -> None:
        await self.chat.deliver(event)

    async def deliver_queued(self, now: datetime) -> int:
        """Post what Teams missed (outbox items of platform "teams", then replies to typed
        commands); returns how many."""
        sent = await self.chat.deliver_queued(now)
        return sent + await self.replies.deliver_waiting(now)

    # --- HTTP ---------------------------------------------------------------------------------

    def mount(self, app: web.Application) -> None:
        app.router.add_post(ROUTE, self.edge.handle)
        app.on_cleanup.append(self._cleanup)

    async def _cleanup(self, _app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        await self.background.drain()
        await self.keys.close()

    async def drain(self) -> None:
        """Wait for work started by inbound turns (tests, shutdown)."""
        await self.background.drain()

    # --- the SDK application ------------------------------------------------------------------

    def _application(self, connections: Connections) -> AgentApplication[TurnState]:
        options = ApplicationOptions(
            storage=MemoryStorage(), start_typing_timer=False, remove_recipient_mention=True
        )
        app = AgentApplication[TurnState](options, connection_manager=connections)
        app.adaptive_card.action_execute(ANY_VERB)(self._on_execute)
        app.adaptive_card.action_submit(ANY_VERB, submit_filter="verb")(self._on_submit)
        app.adaptive_card.action_submit(REQUEST_VERB, submit_filter="form")(self._on_form_submit)
        app.message()(self._on_message)
        app.error(self._on_error)
        return app

    async def _on_execute(
        self, context: TurnContext, _state: TurnState, data: Any
    ) -> AdaptiveCardInvokeResponse:
        turn = Turn.of(context.activity)
        verb = _verb(context.activity.value)
        reply = await self._guarded(self._execute(turn, verb, data))
        if isinstance(reply, str):
            return AdaptiveCardInvokeResponse(
                status_code=200, type=ContentTypes.message, value=reply
            )
        return AdaptiveCardInvokeResponse(
            status_code=200, type=ContentTypes.adaptive_card, value=reply
        )

    async def _execute(self, turn: Turn, verb: object, data: Any) -> Reply:
        if verb == REQUEST_VERB:
            return await self.actions.on_form(turn, data)
        return await self.actions.on_card(turn, verb, data)

    async def _on_submit(self, context: TurnContext, _state: TurnState, data: Any) -> None:
        turn = Turn.of(context.activity)
        reply = await self._guarded(self.actions.on_card(turn, None, data))
        await self._answer(context, turn, [_submitted(reply)])

    async def _on_form_submit(self, context: TurnContext, _state: TurnState, data: Any) -> None:
        turn = Turn.of(context.activity)
        reply = await self._guarded(self.actions.on_form(turn, data))
        await self._answer(context, turn, [reply])

    async def _on_message(self, context: TurnContext, _state: TurnState) -> None:
        turn = Turn.of(context.activity)
        try:
            replies = await self.commands.on_text(turn, context.activity.text)
        except Exception as exc:
            replies = [self._failure(exc)]
        await self._answer(context, turn, replies)

    async def _on_error(self, context: TurnContext, error: Exception) -> None:
        log.error("teams: turn failed: %s", type(error).__name__, exc_info=error)

    async def _guarded(self, work: Awaitable[Reply]) -> Reply:
        try:
            return await work
        except Exception as exc:
            return self._failure(exc)

    def _failure(self, exc: Exception) -> str:
        if isinstance(exc, BreakGlassError):
            # Its own first line: a person is told describe(exc), which withholds a database.
            log.warning("teams: action failed: %s", (str(exc) or type(exc).__name__)[:300])
        else:
            log.error("teams: action crashed: %s", type(exc).__name__, exc_info=exc)
        return f"Not done. {describe(exc)}"

    async def _answer(self, context: TurnContext, turn: Turn, replies: list[Reply]) -> None:
        """Reply in the message's thread, but not inside the turn: the HTTP answer must not
        wait for a slow Bot Connector (see ``replies``). The turn's own claims go along, so
        the replies are sent as in-turn replies would be."""
        now = self.clock()
        answers = [
            Answer(turn.reference, turn.activity_id, message_of(r), context.identity, now)
            for r in replies
        ]
        await self.replies.answer(answers)


def _verb(value: object) -> object:
    action = value.get("action") if isinstance(value, Mapping) else None
    return action.get("verb") if isinstance(action, Mapping) else None


STEP_UP_BY_SUBMIT = (
    "Not done yet: approving this plan needs a fresh sign-in. Press Approve in a current "
    "Teams client, which shows the sign-in button to you alone."
)


def _submitted(reply: Reply) -> Reply:
    """An ``Action.Submit`` cannot swap the card for this person only: answer in words (the
    shared cards are updated through the job's events). A sign-in link is never answered
    this way: the answer is posted where everyone sees it."""
    if isinstance(reply, str):
        return reply
    if any(a.get("type") == "Action.OpenUrl" for a in reply.get("actions", [])):
        return STEP_UP_BY_SUBMIT
    return "Done. The cards above show the new state."
