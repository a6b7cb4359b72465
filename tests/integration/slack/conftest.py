"""A whole break-glass service on loopback, with Slack in front of it.

The real Bolt app (mounted on an aiohttp server on port 0) receives signed requests; the real
slack_sdk client talks to the fake Slack Web API; the job service runs on SQLite with the real
gateway and runbook executor, and GraphTools reach the simulated Entra tenant. The tenant's
manual clock is the service's clock too, so one ``advance`` moves both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.slack import SlackAdapter, SlackConfig
from adapters.slack.web import METHOD_SCOPES
from adapters.store import SqlStore, sqlite_url
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.job_commands import chat_ports
from bot.service import JobService
from engine.job import Job
from engine.lifecycle import Rules
from tests.integration.graph.conftest import config_for
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.support import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    INCIDENT,
    SECRET,
    TOKEN,
    SlackSender,
)
from tests.support.engine_sim import T0, fixed_keys
from tests.support.waiting import settle

APPROVERS = {BOB: "u-bob", CAROL: "u-carol", DAVE: "u-dave"}
# Slack's answers to a message or view it will not take as sent: never our code's to earn.
MALFORMED = frozenset(
    {"invalid_blocks", "msg_blocks_too_long", "invalid_arguments", "view_too_large", "no_text"}
)


async def no_sleep(_seconds: float) -> None:
    return None


@dataclass
class Env:
    fake: FakeSlack
    sim: SimulatedTenant
    clock: ManualClock
    store: SqlStore
    service: JobService
    executor: RunbookExecutor
    slack: SlackAdapter
    sender: SlackSender

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    async def settle(self) -> None:
        """Wait until the Slack work, the executor and the service's tasks are all done."""
        await settle(
            self.slack.settle,
            self.executor.wait_idle,
            pending=lambda: [*self.service.tasks, *self.slack.tasks],
        )

    async def jobs(self) -> list[Job]:
        return [Job.from_json(s.document) for s in await self.store.list_jobs()]

    async def only_job(self) -> Job:
        (job,) = await self.jobs()
        return job


def slack_config(fake: FakeSlack, tenant_id: str, **overrides: Any) -> SlackConfig:
    fields: dict[str, Any] = {
        "bot_token": TOKEN,
        "signing_secret": SECRET,
        "incident_channels": frozenset({INCIDENT}),
        "approver_user_ids": APPROVERS,
        "requesters": {ALICE: "u-alice", BOB: "u-bob"},
        "tenant_id": tenant_id,
        "api_url": fake.api_url,
        "timeout": 5.0,
        "max_retry_after": 1.0,
    }
    return SlackConfig(**(fields | overrides))


@pytest.fixture
def slack_overrides() -> dict[str, Any]:
    """``SlackConfig`` fields a test module sets differently (override this fixture there)."""
    return {}


@pytest.fixture
def fake_type() -> type[FakeSlack]:
    """The fake Slack the tests run against; a module overrides it to inject its faults."""
    return FakeSlack


@pytest.fixture
async def fake(
    slack_overrides: dict[str, Any], fake_type: type[FakeSlack]
) -> AsyncIterator[FakeSlack]:
    slack = fake_type(TOKEN, set(slack_overrides.get("incident_channels", {INCIDENT})))
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
async def env(
    tmp_path: Path, fake: FakeSlack, slack_overrides: dict[str, Any]
) -> AsyncIterator[Env]:
    clock = ManualClock(T0)
    async with SimulatedTenant(clock=clock, ca_interval=0.02) as sim:
        store = await SqlStore.open(sqlite_url(tmp_path))
        graph = config_for(sim)
        async with GraphTools(graph, store, clock=clock.now) as tools:
            service = JobService(
                store=store,
                keys=fixed_keys(),
                rules=Rules(approvers=frozenset(APPROVERS.values()), simulated=True),
                tools=tools,
                clock=clock.now,
                sleep=no_sleep,
                bundle_dir=tmp_path / "bundles",
            )
            executor = RunbookExecutor(ToolGateway(service))
            service.executor = executor
            fake.clock = lambda: clock.now().timestamp()  # trigger ids expire on this clock
            config = slack_config(fake, sim.tenant_id, **slack_overrides)
            slack = SlackAdapter(config, chat_ports(service))
            service.notifier.register(slack)
            app = web.Application()
            slack.mount(app)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            async with aiohttp.ClientSession() as session:
                url = f"http://{host}:{port}/slack/events"
                sender = SlackSender(session, url, on_trigger=fake.issue_trigger)
                environment = Env(fake, sim, clock, store, service, executor, slack, sender)
                yield environment
                await environment.settle()
                await slack.close()
            # Whatever a test did, the bot called only methods the manifest has scopes for.
            # (apps.connections.open is Socket Mode's, under the app-level token.)
            allowed = set(METHOD_SCOPES) | {"apps.connections.open"}
            assert {c.method for c in fake.calls} <= allowed
            # ... and sent nothing Slack refuses as malformed or too long, or cuts short.
            assert not [r for r in fake.refusals if r[1] in MALFORMED], fake.refusals
            assert not fake.warnings
            await runner.cleanup()
            await store.close()
