"""The running service: wires settings to the store, keys, tenant, job service, gateway,
executor, chat channels and HTTP routes, and runs the timers.

``Runtime.start()`` resumes every open job before it accepts work; ``stop()`` cancels the
timers and closes connections, leaving every open job resumable by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from adapters import chat_actions
from adapters.console import ConsoleChannel
from adapters.console.channel import ConsoleHandlers
from adapters.graph import GraphConfig, GraphTools
from adapters.graph.config import CertificateCredential
from adapters.graph.simulated import SimulatedTenant
from adapters.graph.simulated.directory import default_seed
from adapters.slack import SlackAdapter, SlackConfig
from adapters.store import SqlStore, sqlite_url
from adapters.teams import TeamsBot, TeamsConfig
from bot import metrics
from bot.agent_executor import AgentConfig, AgentExecutor
from bot.clock import ScaledClock, system_clock
from bot.config import Settings
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway, add_gateway_routes
from bot.job_commands import ServiceJobs, chat_ports
from bot.keys import init_keys, load_keys, trust_document
from bot.model_proxy import ModelProxy, ProxyConfig, UpstreamConfig, add_proxy_routes
from bot.registry import add_registry_routes
from bot.scripted_model import SCRIPTED_MODEL_ID, SCRIPTED_PROVIDER, ScriptedModel
from bot.service import JobService
from cards.job_views import action_summary, receipt_line
from cards.views import RequestValues, Template
from engine.canonical import jcs
from engine.errors import ConfigError, TemplateError
from engine.identity import Directory
from engine.job import OPEN, RESOLVED, Job
from engine.lifecycle import Keys, Rules
from engine.outcome import Outcome
from engine.timeutil import parse_iso
from engine.wpc import ModelAllowance

log = logging.getLogger("breakglass.app")
OUTBOX_SECONDS = 15.0
SIMULATED_SEED = default_seed()


def seed_people() -> dict[str, str]:
    users = {u["displayName"].split()[0].lower(): u["id"] for u in SIMULATED_SEED["users"]}
    return users


def default_directory() -> Directory:
    """The embedded default's people: console identities of the simulated seed's users."""
    return Directory({f"console:{name}": [pid] for name, pid in seed_people().items()})


def seed_names() -> dict[str, str]:
    names = {SIMULATED_SEED["tenantId"]: f"{SIMULATED_SEED['tenantDomain']} (simulated)"}
    for kind in ("users", "roles", "groups", "conditionalAccessPolicies"):
        for item in SIMULATED_SEED.get(kind, []):
            names[item["id"]] = item["displayName"]
    return names


def make_clock(settings: Settings) -> Callable[[], datetime]:
    if settings.clock_scale == 1.0:
        return system_clock
    anchor = parse_iso(settings.clock_anchor) if settings.clock_anchor else datetime.now(UTC)
    return ScaledClock(anchor, settings.clock_scale)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = make_clock(settings)
        self.simulator: SimulatedTenant | None = None
        self.tools: GraphTools | None = None
        self.store: SqlStore | None = None
        self.console: ConsoleChannel | None = None
        self.app = web.Application()
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._loops: list[asyncio.Task[None]] = []
        self.chats: list[Any] = []  # Slack / Teams adapters (deliver_queued, close)

    # ------------------------------------------------------------------ assembly

    async def start(self) -> str:
        settings = self.settings
        await asyncio.to_thread(settings.home.mkdir, parents=True, exist_ok=True)
        self.keys = await asyncio.to_thread(self._keys)
        self.store = await SqlStore.open(settings.database_url or sqlite_url(settings.home))
        self.tools = await self._tools(self.store)
        self.teams = TeamsConfig.from_env(settings.environ)
        self.names = {**(seed_names() if settings.simulated else {}), **settings.names}
        self.service = JobService(
            store=self.store,
            keys=self.keys,
            rules=self._rules(),
            tools=self.tools,
            clock=self.clock,
            directory=self._directory(),
            bundle_dir=settings.home / "bundles",
        )
        self.gateway = ToolGateway(self.service)
        self.proxy = self._proxy()
        self._routes()
        self.url = await self._listen()
        for chat in self.chats:
            await _maybe(chat, "start_socket_mode")
        self.service.executor = self._executor()
        await self.service.resume()  # before any timer: open jobs are made whole first
        self._loops = [
            asyncio.ensure_future(self._every(settings.tick_seconds, self.service.tick)),
            asyncio.ensure_future(self._every(settings.sweep_seconds, self._sweep)),
            asyncio.ensure_future(self._every(OUTBOX_SECONDS, self._drain_outbox)),
        ]
        log.info("listening on %s (tenant: %s)", self.url, settings.tenant.mode)
        return self.url

    def _proxy(self) -> ModelProxy | None:
        """The receipting model proxy, for the agent executor (none for the runbook)."""
        s = self.settings
        if s.executor != "agent":
            return None
        if s.model.mode == "scripted":
            return ModelProxy(
                self.service, ProxyConfig(), scripted=ScriptedModel(injected=s.model.injected)
            )
        upstream = UpstreamConfig(s.model.provider, s.model.base_url, api_key=s.model.api_key)
        return ModelProxy(self.service, ProxyConfig(upstream=upstream))

    def _executor(self) -> RunbookExecutor | AgentExecutor:
        if self.proxy is None:
            return RunbookExecutor(self.gateway)
        model = (
            SCRIPTED_MODEL_ID
            if self.settings.model.mode == "scripted"
            else self.settings.model.model
        )
        return AgentExecutor(self.gateway, AgentConfig(proxy_url=f"{self.url}/v1", model=model))

    def _model_allowance(self) -> ModelAllowance | None:
        s = self.settings
        if s.executor != "agent":
            return None
        if s.model.mode == "scripted":
            return ModelAllowance(SCRIPTED_PROVIDER, SCRIPTED_MODEL_ID)
        return ModelAllowance(s.model.provider, s.model.model)

    async def _drain_outbox(self) -> None:
        """Deliver chat posts missed while a platform was unreachable."""
        for chat in self.chats:
            await chat.deliver_queued(self.clock())

    async def _sweep(self) -> None:
        await self.service.sweep()
        if self.proxy is not None:
            await self.proxy.purge_expired()

    def _keys(self) -> Keys:
        if self.settings.simulated:
            return init_keys(self.settings.home)[0]
        return load_keys(self.settings.home)

    def _rules(self) -> Rules:
        s = self.settings
        approvers = s.approvers or (
            frozenset({seed_people()["bob"], seed_people()["carol"]})
            if s.simulated
            else frozenset()
        )
        if not approvers:
            raise ConfigError("policy.approvers is empty: nobody could ever approve")
        return Rules(
            approvers=approvers,
            requesters=s.requesters,
            pending_ttl=timedelta(minutes=s.pending_minutes),
            notice_every=timedelta(minutes=s.notice_every_minutes),
            rollback_token_ttl=timedelta(minutes=s.rollback_token_minutes),
            max_minutes=s.max_minutes,
            model=self._model_allowance(),
            simulated=s.simulated,
        )

    def _directory(self) -> Directory:
        s = self.settings
        if s.identities:
            base = Directory(s.identities, {}, s.allow_email_match)
        else:
            base = default_directory() if s.simulated else Directory()
        if self.teams is None:
            return base
        merged = {**base.by_chat_identity, **self.teams.directory_entries()}
        return Directory(merged, base.by_email, base.allow_email_match)

    async def _tools(self, store: SqlStore) -> GraphTools:
        tenant = self.settings.tenant
        if tenant.mode == "graph":
            certificate = (
                CertificateCredential(Path(tenant.certificate_path), tenant.certificate_thumbprint)
                if tenant.certificate_path
                else None
            )
            config = GraphConfig(
                tenant_id=tenant.tenant_id,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret or None,
                certificate=certificate,
                authority_base_url=tenant.authority_url,
                graph_base_url=tenant.graph_url,
            )
            return GraphTools(config, snapshots=store, clock=self.clock)
        if tenant.simulated_url:
            base, secret = tenant.simulated_url.rstrip("/"), tenant.simulated_secret
        else:
            self.simulator = SimulatedTenant(clock=_SimClock(self.clock))
            base = await self.simulator.start()
            secret = self.simulator.client_secret
        config = GraphConfig(
            tenant_id=SIMULATED_SEED["tenantId"],
            client_id=SIMULATED_SEED["application"]["appId"],
            client_secret=secret,
            authority_base_url=base,
            graph_base_url=f"{base}/v1.0",
        )
        return GraphTools(config, snapshots=store, clock=self.clock)

    # -------------------------------------------------------------------- routes

    def _routes(self) -> None:
        app = self.app
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        add_gateway_routes(app, self.gateway)
        if self.proxy is not None:
            add_proxy_routes(app, self.proxy)
        add_registry_routes(app, self.service.store, {self.keys.publisher.did})
        slack = SlackConfig.from_env(self.settings.environ)
        if slack is not None:
            adapter = SlackAdapter(slack, chat_ports(self.service), names=self.names)
            adapter.mount(app)
            self.service.notifier.register(adapter)
            self.chats.append(adapter)
        if self.teams is not None:
            bot = TeamsBot(
                self.teams,
                chat_ports(self.service),
                names=self.names,
                target_tenant_id=self._tenant_id(),
            )
            bot.mount(app)
            self.service.notifier.register(bot)
            self.chats.append(bot)
        if self.settings.simulated and self.settings.console:
            self.console = ConsoleChannel()
            self.console.mount(app, self._console_handlers())
            self.service.notifier.register(self.console)

    async def _listen(self) -> str:
        # handler_cancellation: a client hanging up cuts an upstream model stream at once
        self.runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, _request: web.Request) -> web.Response:
        try:
            assert self.store is not None
            jobs = await self.store.list_jobs(OPEN)
        except Exception as exc:  # readiness reports any failure, never raises
            return web.json_response({"ready": False, "error": type(exc).__name__}, status=503)
        return web.json_response({"ready": True, "open_jobs": len(jobs)})

    async def _metrics(self, _request: web.Request) -> web.Response:
        assert self.store is not None
        counts: dict[str, int] = {}
        for stored in await self.store.list_jobs():
            counts[stored.state] = counts.get(stored.state, 0) + 1
        for state in sorted(OPEN | RESOLVED):
            metrics.JOBS.labels(state).set(counts.get(state, 0))
        return web.Response(body=generate_latest(metrics.REGISTRY), content_type="text/plain")

    # ------------------------------------------------------------------- console

    def _console_handlers(self) -> ConsoleHandlers:
        return ConsoleHandlers(
            request=self._console_request,
            act=self._console_act,
            jobs=self._console_jobs,
            bundle=self._console_bundle,
            trust=lambda: trust_document(self.keys),
            identities=self._console_identities,
        )

    def _console_identities(self) -> list[dict[str, Any]]:
        ids = seed_people()
        defaults = {"principal": ids.get("alice", ""), "resource": SIMULATED_SEED["roles"][0]["id"]}
        out: list[dict[str, Any]] = []
        for identity, principals in self.service.directory.by_chat_identity.items():
            name = self.names.get(principals[0], identity) if principals else identity
            out.append({"identity": identity, "name": f"{name} ({identity})"})
        if out:
            out[0]["defaults"] = defaults
        return out

    async def _console_request(self, identity: str, form: Mapping[str, Any]) -> dict[str, Any]:
        try:
            values = RequestValues(
                template=Template(str(form.get("template"))),
                principal=str(form.get("principal", "")),
                resource=str(form.get("resource", "")),
                duration_minutes=int(form.get("minutes", 0)),
                justification=str(form.get("justification", "")),
                ticket=str(form.get("ticket", "")),
            )
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"the form is incomplete: {exc}") from exc
        actor = self.service.actor(identity)
        request = chat_actions.request_from_values(
            values, actor, self._tenant_id(), {"platform": "console", "conversation": "console"}
        )
        return (await self.service.request(request, key=None)).to_json()

    def _tenant_id(self) -> str:
        return self.settings.tenant.tenant_id or str(SIMULATED_SEED["tenantId"])

    async def _console_act(self, identity: str, action: Any) -> dict[str, Any]:
        jobs, actor = ServiceJobs(self.service), self.service.actor(identity)
        outcome: Outcome = await chat_actions.act(jobs, action, actor)
        return outcome.to_json()

    async def _console_jobs(self) -> list[dict[str, Any]]:
        assert self.store is not None
        stored = sorted(
            await self.store.list_jobs(), key=lambda s: s.document["created_at"], reverse=True
        )
        out = []
        for item in stored[:20]:
            job = Job.from_json(item.document)
            out.append(await self._job_summary(job))
        return out

    async def _job_summary(self, job: Job) -> dict[str, Any]:
        assert self.store is not None
        records = await self.store.chain(job.job_id)
        action = action_summary(job, self.names)
        return {
            "job_id": job.job_id,
            "state": job.state,
            "resolved": job.resolved,
            "simulated": job.simulated,
            "action": f"{action.template.value}: {action.subject.display_name} → "
            f"{action.resource.display_name} for {action.duration_minutes} min",
            "requester": self.names.get(job.requester.principal or "", job.requester.chat_identity),
            "justification": job.request.get("justification"),
            "ticket": job.request.get("ticket"),
            "plan_hash": job.plan.plan_hash,
            "extension_plan": job.extension.plan_hash if job.extension else None,
            "approvals": [self.names.get(p, p) for p in job.plan.approvers()],
            "created_at": job.created_at,
            "expires_at": job.expires_at,
            "window_start": job.window_start,
            "window_end": job.window_end,
            "now": self.clock().isoformat(),
            "last_tool_call": job.last_tool_call,
            "write_done": job.write_done,
            "end_reason": job.end_reason,
            "ended_at": job.ended_at,
            "ended_by": self.names.get(job.ended_by or "", job.ended_by),
            "rollback_verified": job.rollback_verified,
            "still_privileged": list(job.still_privileged),
            "refusals": [r["reason"] for r in job.refusals[-5:]],
            "receipts": [_line(receipt_line(r)) for r in records],
        }

    async def _console_bundle(self, job_id: str) -> dict[str, Any] | None:
        job = await self.service.load(job_id)
        if not job.resolved:
            return None
        return (await self.service.bundle(job))[0]

    # -------------------------------------------------------------------- timers

    async def _every(self, seconds: float, work: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # a failed round must not stop the timer
                log.exception("periodic %s failed", getattr(work, "__name__", "task"))

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.runner is not None:
            await self.runner.cleanup()
        if hasattr(self, "service"):
            for task in list(self.service.tasks):
                task.cancel()
            await asyncio.gather(*self.service.tasks, return_exceptions=True)
        for chat in self.chats:
            await chat.close()
        if self.proxy is not None:
            await self.proxy.close()
        if self.tools is not None:
            await self.tools.close()
        if self.simulator is not None:
            await self.simulator.stop()
        if self.store is not None:
            await self.store.close()


async def _maybe(obj: Any, method: str) -> None:
    call = getattr(obj, method, None)
    if call is not None:
        await call()


class _SimClock:
    """The in-process simulated tenant keeps the service's time (scaled in the demo)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()


def _line(view: Any) -> str:
    head = view.chain_head_b64u[:10]
    return (
        f"#{view.seq:03d} {view.at:%H:%M:%S} {view.kind:<14} {view.summary} [{view.outcome}] {head}"
    )


def serve_state(home: Path, url: str, pid: int) -> None:
    (home / "serve.json").write_bytes(jcs({"url": url, "pid": pid}))
