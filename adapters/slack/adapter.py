"""``SlackAdapter``: the Bolt app, its HTTP edge, Socket Mode, and the ChatPort, assembled."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from adapters.slack import edge, outbox
from adapters.slack.binding import workspace_gate
from adapters.slack.config import PLATFORM, SlackConfig
from adapters.slack.inbound import Inbound
from adapters.slack.outbound import SlackChat
from adapters.slack.web import SlackApi, make_client
from engine.chat_ports import ChatPorts
from engine.ports import ChatEvent

log = logging.getLogger("breakglass.slack")


class SlackAdapter:
    """Slack for one job service. Wire it with::

    slack = SlackAdapter(config, chat_ports(service))   # bot.job_commands.chat_ports
    service.notifier.register(slack)    # the service's chat effects reach Slack
    slack.mount(web_app)                # POST /slack/events
    await slack.start_socket_mode()     # only does something with an app-level token
    ...  # periodically: await slack.deliver_queued(now)
    await slack.close()
    """

    platform = PLATFORM

    def __init__(
        self,
        config: SlackConfig,
        ports: ChatPorts,
        *,
        names: Mapping[str, str] | None = None,
        public_url: str | None = None,
    ) -> None:
        self.config = config
        self.ports = ports
        self.api = SlackApi(make_client(config, config.bot_token), config, clock=ports.clock)
        self.chat = SlackChat(self.api, ports.store, ports.records, config, names or {})
        self.chat.public_url = public_url  # the audit summary links the report there
        self.tasks: set[asyncio.Task[Any]] = set()
        self.app = AsyncApp(
            # Bolt's own client carries no token: our authorize hands it one per request, so
            # no auth.test call (which could fail while Slack is down) stands before a Kill.
            client=make_client(config, None),
            signing_secret=config.signing_secret,
            authorize=static_authorize(config.bot_token),
            process_before_response=True,  # listeners ack themselves, then spawn the work
            logger=logging.getLogger("breakglass.slack.bolt"),
        )
        # Inbound requests refused before any listener, by reason (a metric's source).
        self.refusals: Counter[str] = Counter()
        self.app.middleware(workspace_gate(config, self.refusals))
        self.inbound = Inbound(config, ports, self.api, self.spawn)
        self.inbound.register(self.app)
        self.app.error(log_listener_error)
        self.edge = edge.Edge(self.app, config.signing_secret, ports.store, ports.clock)
        self._socket: AsyncSocketModeHandler | None = None

    def mount(self, app: web.Application) -> None:
        """Add ``POST /slack/events`` (commands, interactivity and events) to ``app``."""
        edge.mount(app, self.edge)

    async def deliver(self, event: ChatEvent) -> None:
        """ChatPort: show ``event`` in Slack; raises ChatError when Slack did not take it."""
        await self.chat.deliver(event)

    async def deliver_queued(self, now: datetime) -> int:
        """Deliver what failed before (the store's outbox for ``slack``); returns the count."""
        return await outbox.drain(self.ports, self, now)

    async def start_socket_mode(self) -> bool:
        """Connect over Socket Mode when an app-level token is configured (no inbound HTTP)."""
        if self.config.app_token is None:
            return False
        self._socket = AsyncSocketModeHandler(self.app, self.config.app_token)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]
        return True

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run work after the ack; kept so shutdown and tests can wait for it."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack work failed", exc_info=task.exception())

    async def settle(self) -> None:
        """Wait until the work spawned so far (and what it spawned) has finished."""
        while pending := [t for t in self.tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        await self.settle()
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None


def static_authorize(bot_token: str) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Bolt's authorize for one workspace: the configured token, no network call."""

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=bot_token
        )

    return authorize


async def log_listener_error(error: Exception) -> None:
    """Bolt's error handler: a listener failed (Slack gets Bolt's 500 or nothing more)."""
    log.error("Slack listener failed (%s)", type(error).__name__, exc_info=error)
