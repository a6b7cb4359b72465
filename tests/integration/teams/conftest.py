"""A whole break-glass deployment on loopback, seen from Teams.

Real: the Agents SDK adapter and application, our JWT validation against a fake OpenID/JWKS
endpoint, the job service over SqlStore (SQLite), the tool gateway and runbook executor, and
GraphTools against the simulated tenant. Fake: the Bot Connector (records what Teams would
show) and the outbound token provider.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from microsoft_agents.hosting.core import AgentAuthConfiguration, ConnectionManager

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from adapters.teams import RetryPolicy, TeamsBot, TeamsConfig
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.job_commands import chat_ports
from bot.service import JobService
from engine.identity import Directory
from engine.lifecycle import Rules
from tests.integration.graph.conftest import config_for
from tests.integration.teams.fakes import APP_ID, FakeConnector, FakeOpenId, StaticTokens, serve
from tests.support.engine_sim import fixed_keys
from tests.support.waiting import settle

APP_PASSWORD = "teams-app-password-never-logged"
TEAMS_TENANT = "72f988bf-0000-4000-8000-00000000aaaa"
CHANNEL = "19:incident42@thread.tacv2"
THREAD = f"{CHANNEL};messageid=1700000000001"
OTHER_CHANNEL = "19:watercooler@thread.tacv2"
# Seed ids of the simulated tenant (adapters/graph/seed/default.json).
DAVE = "c8d420e6-24f2-50b7-99ea-e4decf6ec878"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"


@dataclass(frozen=True)
class Person:
    user_id: str
    aad: str
    name: str

    def account(self) -> dict[str, str]:
        return {"id": self.user_id, "aadObjectId": self.aad, "name": self.name}


ALICE = Person("29:alice", "aad-alice", "Alice Requester")
BOB = Person("29:bob", "aad-bob", "Bob Approver")
CAROL = Person("29:carol", "aad-carol", "Carol Approver")  # configured by aadObjectId only
DAVE_P = Person("29:dave", "aad-dave", "Dave Approver")
MALLORY = Person("29:mallory", "aad-mallory", "Mallory Bystander")  # in no mapping
ERIN = Person("29:erin", "aad-erin", "Erin Requester")  # may request, may not approve

FAST = RetryPolicy(
    attempts=4,
    base_delay=0.001,
    max_delay=0.01,
    total_budget=1.0,
    request_timeout=5.0,
    cooldown=0.0,
)
# The production bounds (attempts, backoff, Retry-After honoured up to 8 s, 15 s a call),
# waited out on the fake connector's clock: a throttled call waits what Teams asked for, and
# no real time passes. No fail-fast cooldown: that runs on the machine's clock.
IN_FAKE_TIME = RetryPolicy(request_timeout=5.0, cooldown=0.0)


def teams_config(openid: FakeOpenId, **changes: Any) -> TeamsConfig:
    fields: dict[str, Any] = {
        "app_id": APP_ID,
        "tenant_id": TEAMS_TENANT,
        "app_password": APP_PASSWORD,
        "openid_metadata_url": openid.metadata_url,
        "incident_conversations": frozenset({CHANNEL}),
        "approvers": {BOB.user_id: "u-bob", CAROL.aad: "u-carol", DAVE_P.user_id: "u-dave"},
        "requesters": {ALICE.user_id: "u-alice", ERIN.user_id: "u-erin"},
    }
    return TeamsConfig(**(fields | changes))


def connections() -> ConnectionManager:
    settings = AgentAuthConfiguration(client_id=APP_ID, tenant_id=TEAMS_TENANT)
    return ConnectionManager(
        provider_factory=StaticTokens, connections_configurations={"SERVICE_CONNECTION": settings}
    )


@dataclass
class TeamsEnv:
    openid: FakeOpenId
    connector: FakeConnector
    sim: SimulatedTenant
    clock: ManualClock
    store: SqlStore
    service: JobService
    executor: RunbookExecutor
    bot: TeamsBot
    url: str
    http: aiohttp.ClientSession
    sent: list[str] = field(default_factory=list)  # tokens minted for requests
    answered: list[dict[str, Any]] = field(default_factory=list)  # cards in invoke responses

    # --- activities as Teams sends them -----------------------------------------------------

    def activity(self, kind: str, person: Person | None, **fields: Any) -> dict[str, Any]:
        conversation = fields.pop("conversation", THREAD)
        activity_id = fields.pop("id", f"1700{uuid.uuid4().int % 10**9:09d}")
        if kind == "message":  # a person's message: the conversation holds it from now on
            self.connector.heard(conversation, activity_id)
        activity: dict[str, Any] = {
            "type": kind,
            "id": activity_id,
            "channelId": "msteams",
            "serviceUrl": fields.pop("service_url", self.connector.url),
            "recipient": {"id": f"28:{APP_ID}", "name": "Breakglass"},
            "conversation": {
                "id": conversation,
                "conversationType": "channel",
                "tenantId": TEAMS_TENANT,
            },
            "channelData": {"tenant": {"id": TEAMS_TENANT}, "channel": {"id": CHANNEL}},
            **fields,
        }
        if person is not None:
            activity["from"] = person.account()
        return activity

    def message(self, person: Person, text: str, **fields: Any) -> dict[str, Any]:
        mention = {
            "type": "mention",
            "text": "<at>Breakglass</at>",
            "mentioned": {"id": f"28:{APP_ID}", "name": "Breakglass"},
        }
        return self.activity(
            "message", person, text=f"<at>Breakglass</at> {text}", entities=[mention], **fields
        )

    def invoke(
        self, person: Person | None, verb: str, data: dict[str, Any], reply_to: str, **fields: Any
    ) -> dict[str, Any]:
        value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}}
        value["trigger"] = fields.pop("trigger", "manual")
        return self.activity(
            "invoke", person, name="adaptiveCard/action", replyToId=reply_to, value=value, **fields
        )

    async def post(
        self, activity: dict[str, Any], token: str | None = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        headers = {}
        if auth:
            bearer = token if token is not None else self.openid.mint(self.connector.url)
            self.sent.append(bearer)
            headers["Authorization"] = f"Bearer {bearer}"
        async with self.http.post(f"{self.url}/api/messages", json=activity, headers=headers) as r:
            body = await r.json() if r.content_type == "application/json" else None
        if isinstance(body, dict) and body.get("type") == "application/vnd.microsoft.card.adaptive":
            self.answered.append(body["value"])
        return r.status, body

    # --- waiting ------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until the bot, the executor and the service have no work left."""
        await settle(
            self.bot.drain,
            self.executor.wait_idle,
            pending=lambda: [*self.service.tasks, *self.bot.background.tasks],
        )

    def advance(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))


async def no_sleep(_seconds: float) -> None:
    return None


Fake = TypeVar("Fake", FakeOpenId, FakeConnector)


@asynccontextmanager
async def running(fake: Fake) -> AsyncIterator[Fake]:
    """A fake started on loopback for the duration of the block."""
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def openid() -> AsyncIterator[FakeOpenId]:
    async with running(FakeOpenId()) as fake:
        yield fake


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with running(FakeConnector()) as fake:
        yield fake


@pytest.fixture
async def teams(
    tmp_path: Path, openid: FakeOpenId, connector: FakeConnector
) -> AsyncIterator[TeamsEnv]:
    clock = ManualClock()
    config = teams_config(openid)
    async with SimulatedTenant(clock=clock, ca_interval=0.02) as sim:
        store = await SqlStore.open(sqlite_url(tmp_path))
        graph = config_for(sim)
        tools = GraphTools(graph, store, clock=clock.now)
        service = JobService(
            store=store,
            keys=fixed_keys(),
            rules=Rules(approvers=frozenset({"u-bob", "u-carol", "u-dave"}), simulated=True),
            tools=tools,
            clock=clock.now,
            directory=Directory(by_chat_identity=config.directory_entries()),
            sleep=no_sleep,
            bundle_dir=tmp_path / "bundles",
        )
        executor = RunbookExecutor(ToolGateway(service))
        service.executor = executor
        bot = TeamsBot(
            config,
            chat_ports(service),
            names={DAVE: "Dave Operator", USER_ADMIN: "User Administrator"},
            target_tenant_id=sim.tenant_id,
            connections=connections(),
            retry=IN_FAKE_TIME,
            sleep=connector.clock.sleep,
        )
        service.notifier.register(bot)
        app = web.Application()
        bot.mount(app)
        runner, url = await serve(app)
        async with aiohttp.ClientSession() as http:
            env = TeamsEnv(openid, connector, sim, clock, store, service, executor, bot, url, http)
            yield env
            await env.settle()
        await runner.cleanup()
        await tools.close()
        await store.close()
