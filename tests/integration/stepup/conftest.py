"""A job service whose approvals need step-up, the simulated tenant's real sign-in on
loopback, the step-up callback on its own listener, and a browser that follows redirects
by hand. Both the service and the tenant keep the same test-moved clock."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from adapters.entra_signin import CALLBACK_PATH, StepUpFlow
from adapters.entra_signin.routes import add_callback_route
from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from bot.job_commands import chat_ports
from bot.service import JobService
from bot.stepup import simulated_config
from engine.access import access_from_config
from engine.identity import Directory
from engine.job import Actor, Job
from engine.lifecycle import Request, Rules
from engine.outcome import Outcome
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import MemorySnapshots
from tests.support.engine_sim import T0, entra_role_request, fixed_keys
from tests.support.fakes import Clock, MemoryTenant

ALICE = "92c37b1a-3449-5aff-9fd1-00ab297ec470"
BOB = "2deaf196-6f46-52be-8b81-dd0bb43868a8"
CAROL = "8809a556-03cf-5dfb-9240-0a6fa69b8295"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
DIRECTORY = Directory(
    by_chat_identity={
        "console:alice": [ALICE],
        "console:bob": [BOB],
        "console:carol": [CAROL],
    }
)


class SharedClock:
    """The simulated tenant reads the service's clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()


@dataclass
class StepUpEnv:
    service: JobService
    tenant: SimulatedTenant
    flow: StepUpFlow
    browser: aiohttp.ClientSession
    clock: Clock

    def actor(self, name: str) -> Actor:
        return self.service.actor(f"console:{name}")

    async def request(self, job_id: str = "job-stepup") -> Job:
        command = role_request(self.service, self.tenant, ALICE, "INC-7", job_id)
        outcome = await self.service.request(command)
        assert outcome.ok, outcome
        return await self.service.load(job_id)

    async def sign_in_url(self, job: Job, approver: str) -> str:
        return await self.flow.begin(job.job_id, job.plan.plan_hash, self.actor(approver))

    async def sign_in(self, url: str, user: str, *, mfa: bool = True) -> str:
        """The browser: open the sign-in page, sign in as ``user``; the callback URL."""
        async with self.browser.get(url) as page:
            assert page.status == 200
            assert "SIMULATED" in await page.text()
        form: dict[str, Any] = {**URL(url).query, "user": user}
        if mfa:
            form["mfa"] = "1"
        async with self.browser.post(url, data=form, allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            return answer.headers["Location"]

    async def callback(self, location: str) -> tuple[int, str]:
        async with self.browser.get(location, allow_redirects=False) as answer:
            return answer.status, await answer.text()

    async def approve_with_step_up(self, job: Job, approver: str, user: str) -> tuple[int, str]:
        return await self.callback(await self.sign_in(await self.sign_in_url(job, approver), user))


def role_request(
    service: JobService, tenant: SimulatedTenant, principal: str, ticket: str, job_id: str
) -> Request:
    """Alice asks for User Administrator for ``principal`` for 30 minutes."""
    alice, why = service.actor("console:alice"), "INC-7 locked out of the helpdesk"
    return entra_role_request(
        job_id, alice, tenant.tenant_id, principal, USER_ADMIN, justification=why, ticket=ticket
    )


@pytest.fixture
async def stepup(tmp_path: Path) -> AsyncIterator[StepUpEnv]:
    clock = Clock(T0)
    store = await SqlStore.open(sqlite_url(tmp_path))
    access = access_from_config(
        {"entra-role": {"roles": [USER_ADMIN], "principals": ["*"], "step_up": "required"}},
        {"authentication_context": "c1", "max_age_seconds": 300},
    )
    service = JobService(
        store=store,
        keys=fixed_keys(),
        rules=Rules(approvers=frozenset({BOB, CAROL}), access=access),
        tools=MemoryTenant(),
        clock=clock,
        directory=DIRECTORY,
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # the callback's port is known before its app is built
    host, port = listener.getsockname()[:2]
    redirect = f"http://{host}:{port}{CALLBACK_PATH}"
    async with (
        SimulatedTenant(clock=SharedClock(clock)) as tenant,
        aiohttp.ClientSession() as session,
        aiohttp.ClientSession() as browser,
    ):
        tenant.register_redirect_uri(redirect)
        config = simulated_config(tenant, redirect)
        flow = StepUpFlow(config, chat_ports(service).jobs, session, clock)
        app = web.Application()
        add_callback_route(app, flow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, listener).start()
        yield StepUpEnv(service, tenant, flow, browser, clock)
        await runner.cleanup()
    await store.close()


@dataclass
class GraphEnv:
    """A job service over the real Graph client and the simulated tenant (live reads)."""

    service: JobService
    tenant: SimulatedTenant

    async def request(self, ticket: str, principal: str, job_id: str) -> Outcome:
        command = role_request(self.service, self.tenant, principal, ticket, job_id)
        return await self.service.request(command)


@contextlib.asynccontextmanager
async def graph_env(
    tmp_path: Path, template: dict[str, Any], name: str = "entra-role"
) -> AsyncIterator[GraphEnv]:
    """``GraphEnv`` whose template ``name`` has the access rules ``template``."""
    clock = ManualClock(T0)
    access = access_from_config({name: template}, {})
    store = await SqlStore.open(sqlite_url(tmp_path))
    async with SimulatedTenant(clock=clock) as tenant:
        tools = GraphTools(config_for(tenant), MemorySnapshots(), clock=clock.now)
        service = JobService(
            store=store,
            keys=fixed_keys(),
            rules=Rules(approvers=frozenset({BOB, CAROL}), access=access),
            tools=tools,
            clock=clock.now,
            directory=DIRECTORY,
        )
        yield GraphEnv(service, tenant)
        await tools.close()
    await store.close()
