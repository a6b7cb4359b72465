"""A job service with the agent executor, the model proxy and the scripted model, all real,
talking HTTP on loopback (ports picked by the OS). The tenant is the in-memory one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.store import SqlStore
from bot.agent_executor import AgentConfig, AgentExecutor
from bot.gateway_service import ToolGateway
from bot.loopback import Served, serve
from bot.model_proxy import ModelProxy, add_proxy_routes
from bot.proxy_config import ProxyConfig, UpstreamConfig
from bot.scripted_model import SCRIPTED_MODEL_ID, SCRIPTED_PROVIDER, ScriptedModel
from bot.service import JobService
from engine.cst import TokenKind
from engine.lifecycle import Approve, Request, Rules
from engine.wpc import ModelAllowance
from tests.integration.service.conftest import memory_service
from tests.support.engine_sim import console_request
from tests.support.fakes import Clock, MemoryTenant, RecordingChat
from tests.support.waiting import settle

ALLOWED_MODEL = ModelAllowance(SCRIPTED_PROVIDER, SCRIPTED_MODEL_ID)


@dataclass
class AgentEnv:
    store: SqlStore
    service: JobService
    gateway: ToolGateway
    proxy: ModelProxy
    scripted: ScriptedModel
    tenant: MemoryTenant
    chat: RecordingChat
    clock: Clock
    proxy_url: str  # the proxy's OpenAI base URL (…/v1)
    executor: AgentExecutor | None = None
    sites: list[Served] = field(default_factory=list)

    async def settle(self) -> None:
        """Wait until the agent, the service's background work and the proxy are idle."""
        drains = [self.executor.wait_idle] if self.executor is not None else []
        await settle(*drains, self.proxy.drain, pending=lambda: self.service.tasks)

    async def close(self) -> None:
        if self.executor is not None:
            await self.executor.close()
        await self.settle()
        for site in reversed(self.sites):
            await site.close()
        await self.proxy.close()
        await self.store.close()

    def agent_token(self, job: Any) -> str:
        return self.service.token_for(job, TokenKind.AGENT)


@dataclass(frozen=True)
class Options:
    agent: bool = True  # run the agent executor (False: tests call the proxy themselves)
    stream: bool = True
    injected: bool = False
    in_process: bool = False  # the proxy calls the scripted model in-process, not over HTTP
    model: str = SCRIPTED_MODEL_ID
    max_steps: int = 8
    allowed: ModelAllowance = ALLOWED_MODEL
    proxy: dict[str, Any] = field(default_factory=dict)  # ProxyConfig fields to change


MakeEnv = Callable[..., Awaitable[AgentEnv]]


async def build(tmp_path: Path, options: Options) -> AgentEnv:
    rules = Rules(
        approvers=frozenset({"u-bob", "u-carol", "u-dave"}), model=options.allowed, simulated=True
    )
    service, tenant, clock = await memory_service(tmp_path, rules)
    store = service.store
    gateway = ToolGateway(service)
    scripted = ScriptedModel(injected=options.injected)
    sites = [] if options.in_process else [await serve(scripted.app())]
    upstream = (
        None if options.in_process else UpstreamConfig(SCRIPTED_PROVIDER, sites[0].url + "/v1")
    )
    config = replace(ProxyConfig(upstream=upstream), **options.proxy)
    proxy = ModelProxy(service, config, scripted=scripted)
    app = web.Application()
    add_proxy_routes(app, proxy)
    sites.append(await serve(app))
    chat = RecordingChat()
    service.notifier.register(chat)
    env = AgentEnv(
        store, service, gateway, proxy, scripted, tenant, chat, clock, sites[-1].url + "/v1"
    )
    env.sites = sites
    if options.agent:
        env.executor = AgentExecutor(
            gateway,
            AgentConfig(
                env.proxy_url,
                model=options.model,
                stream=options.stream,
                max_steps=options.max_steps,
            ),
        )
        service.executor = env.executor
    return env


@pytest.fixture
async def make_env(tmp_path: Path) -> AsyncIterator[MakeEnv]:
    made: list[AgentEnv] = []

    async def make(**changes: Any) -> AgentEnv:
        home = tmp_path / f"env{len(made)}"
        home.mkdir()
        env = await build(home, Options(**changes))
        made.append(env)
        return env

    yield make
    for env in made:
        await env.close()


@pytest.fixture
async def env(make_env: MakeEnv) -> AgentEnv:
    return await make_env()


def request(job_id: str, actor: Any, **changes: Any) -> Request:
    return console_request(job_id, actor=actor, **changes)


async def approve(env: AgentEnv, job_id: str = "job-a1", **changes: Any) -> str:
    """Request and approve a job (the agent starts on the second approval); the plan hash."""
    s = env.service
    out = await s.request(request(job_id, s.actor("console:alice"), **changes))
    assert out.ok, out
    plan = str(out.result["plan_hash"])
    assert (await s.command(job_id, Approve(s.actor("console:bob"), plan))).ok
    assert (await s.command(job_id, Approve(s.actor("console:carol"), plan))).ok
    return plan
