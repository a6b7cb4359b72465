"""Assembly: the parts of the running service built from ``Settings`` (store, keys, tenant
tools, job service, gateway, model proxy), and the embedded default's people and names.

:func:`assemble` opens what must be opened (the store, an in-process simulated tenant) and
returns them as one frozen :class:`Assembly`; :meth:`Assembly.close` closes them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.graph import GraphConfig, GraphTools
from adapters.graph.simulated import SimulatedTenant
from adapters.graph.simulated.directory import default_seed
from adapters.store import SqlStore, sqlite_url
from adapters.teams import TeamsConfig
from bot.agent_executor import AgentConfig, AgentExecutor
from bot.clock import FileClock, ScaledClock, SteadyClock
from bot.config import Settings
from bot.config_parts import simulated_people
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.kept_commands import spool_in
from bot.keys import init_keys, load_keys
from bot.lifecycle_log import LoggingPacedChat
from bot.model_proxy import ModelProxy
from bot.openclaw_executor import OpenClawConfig, OpenClawExecutor
from bot.proxy_config import ProxyConfig, UpstreamConfig
from bot.scripted_model import SCRIPTED_MODEL_ID, SCRIPTED_PROVIDER, ScriptedModel
from bot.service import JobService
from bot.shared_keys import check_shared_keys
from engine.errors import ConfigError
from engine.identity import Directory
from engine.lifecycle import Keys, Rules
from engine.timeutil import parse_iso
from engine.wpc import ModelAllowance

SIMULATED_SEED = default_seed()
# Test mode only: the service reads the time from this file, which the test advances.
CLOCK_FILE_VAR = "BREAKGLASS_TEST_CLOCK_FILE"
# The executors whose model calls go through our receipting proxy.
MODEL_EXECUTORS = frozenset({"agent", "openclaw"})

Clock = Callable[[], datetime]


def seed_people() -> dict[str, str]:
    return simulated_people()


def default_directory() -> Directory:
    """The embedded default's people: console identities of the simulated seed's users."""
    return Directory({f"console:{name}": [pid] for name, pid in seed_people().items()})


def seed_names() -> dict[str, str]:
    names = {SIMULATED_SEED["tenantId"]: f"{SIMULATED_SEED['tenantDomain']} (simulated)"}
    for kind in ("users", "roles", "groups", "conditionalAccessPolicies"):
        for item in SIMULATED_SEED.get(kind, []):
            names[item["id"]] = item["displayName"]
    return names


def make_clock(settings: Settings) -> Clock:
    clock_file = settings.clock_file
    if clock_file:
        if not settings.simulated:
            raise ConfigError(f"{CLOCK_FILE_VAR} is for tests against the simulated tenant only")
        return FileClock(Path(clock_file))
    if settings.clock_scale == 1.0:
        return SteadyClock()
    anchor = parse_iso(settings.clock_anchor) if settings.clock_anchor else datetime.now(UTC)
    return ScaledClock(anchor, settings.clock_scale)


@dataclass(frozen=True)
class Assembly:
    """Everything the running service is made of, built once at start."""

    settings: Settings
    clock: Clock
    keys: Keys
    store: SqlStore
    tools: GraphTools
    simulator: SimulatedTenant | None  # the in-process tenant of the embedded default
    teams: TeamsConfig | None
    names: dict[str, str]  # ids to display names, for cards and the console
    service: JobService
    gateway: ToolGateway
    proxy: ModelProxy | None  # the receipting model proxy (agent executor only)

    @property
    def tenant_id(self) -> str:
        return self.settings.tenant.tenant_id or str(SIMULATED_SEED["tenantId"])

    def executor(self, url: str) -> RunbookExecutor | AgentExecutor | OpenClawExecutor:
        """The executor; an agent's model calls go through the proxy at ``url``."""
        if self.proxy is None:
            return RunbookExecutor(self.gateway)
        model = (
            SCRIPTED_MODEL_ID
            if self.settings.model.mode == "scripted"
            else self.settings.model.model
        )
        if self.settings.executor == "openclaw":
            config = OpenClawConfig(proxy_url=f"{url}/v1", home=self.settings.home, model=model)
            return OpenClawExecutor(self.gateway, config)
        return AgentExecutor(self.gateway, AgentConfig(proxy_url=f"{url}/v1", model=model))

    async def close(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()
        await self.tools.close()
        if self.simulator is not None:
            await self.simulator.stop()
        await self.store.close()


async def assemble(settings: Settings, clock: Clock) -> Assembly:
    # Everything that can only be refused by the settings first, before opening anything.
    rules = _rules(settings)
    teams, directory = settings.teams, settings.directory
    await asyncio.to_thread(settings.home.mkdir, parents=True, exist_ok=True)
    keys = await asyncio.to_thread(_keys, settings)
    store = await SqlStore.open(settings.database_url or sqlite_url(settings.home))
    simulator = _simulator(settings, clock)
    try:
        await check_shared_keys(store, keys)  # a replica with keys of its own does not start
        tools = await _tools(settings, store, clock, simulator)
    except BaseException:
        await store.close()
        raise
    service = JobService(
        store=store,
        keys=keys,
        rules=rules,
        tools=tools,
        clock=clock,
        directory=directory,
        bundle_dir=settings.home / "bundles",
        kept_commands=spool_in(settings.home, settings.replica_id),
        replica_id=settings.replica_id or None,
        deployment=settings.deployment or None,
        resolver=tools,  # preflight: targets resolved against the tenant before approval
    )
    chat = service.chat  # the same pacing, plus one log line per lifecycle event
    service.chat = LoggingPacedChat(
        chat.notifier, chat.clock, chat.sleep, chat.tasks, chat.receipts_every
    )
    names = {**(seed_names() if settings.simulated else {}), **settings.names}
    gateway, proxy = ToolGateway(service), _proxy(settings, service)
    # In field order (each field has its own type, so mypy catches a swap).
    return Assembly(
        settings, clock, keys, store, tools, simulator, teams, names, service, gateway, proxy
    )


def _proxy(settings: Settings, service: JobService) -> ModelProxy | None:
    """The receipting model proxy, for the agent executor (none for the runbook)."""
    if settings.executor not in MODEL_EXECUTORS:
        return None
    model = settings.model
    if model.mode == "scripted":
        return ModelProxy(service, ProxyConfig(), scripted=ScriptedModel(injected=model.injected))
    upstream = UpstreamConfig(model.provider, model.base_url, api_key=model.api_key)
    return ModelProxy(service, ProxyConfig(upstream=upstream))


def _model_allowance(settings: Settings) -> ModelAllowance | None:
    if settings.executor not in MODEL_EXECUTORS:
        return None
    if settings.model.mode == "scripted":
        return ModelAllowance(SCRIPTED_PROVIDER, SCRIPTED_MODEL_ID)
    return ModelAllowance(settings.model.provider, settings.model.model)


def _keys(settings: Settings) -> Keys:
    if settings.simulated:
        return init_keys(settings.home)[0]
    return load_keys(settings.home)


def _rules(settings: Settings) -> Rules:
    s = settings
    approvers = s.approvers or (
        frozenset({seed_people()["bob"], seed_people()["carol"]}) if s.simulated else frozenset()
    )
    if len(approvers) < 2:  # the settings refuse this already; never build such rules
        raise ConfigError("policy.approvers: at least two approvers are required")
    return Rules(
        approvers=approvers,
        requesters=s.requesters,
        pending_ttl=timedelta(minutes=s.pending_minutes),
        notice_every=timedelta(minutes=s.notice_every_minutes),
        rollback_token_ttl=timedelta(minutes=s.rollback_token_minutes),
        replication_settle=timedelta(seconds=s.replication_settle_seconds),
        max_minutes=s.max_minutes,
        model=_model_allowance(s),
        simulated=s.simulated,
        access=s.access,
    )


def _simulator(settings: Settings, clock: Clock) -> SimulatedTenant | None:
    """The in-process simulated tenant (embedded default), sharing the service's clock."""
    tenant = settings.tenant
    if tenant.mode == "graph" or tenant.simulated_url:
        return None
    # Its state lives under the home, so a restarted service finds its grants where they were.
    state = settings.home / "simulated-tenant.json"
    return SimulatedTenant(clock=_SimClock(clock), state_path=state)


async def _tools(
    settings: Settings, store: SqlStore, clock: Clock, simulator: SimulatedTenant | None
) -> GraphTools:
    tenant = settings.tenant
    if settings.graph is not None:  # built and checked with the settings
        config = replace(settings.graph, deployment=settings.deployment)
        return GraphTools(config, snapshots=store, clock=clock, pacing=store)
    if simulator is None:
        base, secret = tenant.simulated_url.rstrip("/"), tenant.simulated_secret
    else:
        base, secret = await simulator.start(), simulator.client_secret
    config = GraphConfig(
        tenant_id=SIMULATED_SEED["tenantId"],
        client_id=SIMULATED_SEED["application"]["appId"],
        client_secret=secret,
        authority_base_url=base,
        graph_base_url=f"{base}/v1.0",
        deployment=settings.deployment,
    )
    return GraphTools(config, snapshots=store, clock=clock, pacing=store)


class _SimClock:
    """The in-process simulated tenant keeps the service's time (scaled in the demo)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()
