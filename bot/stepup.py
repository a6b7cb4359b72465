"""Step-up wiring (issue 17): the sign-in flow, its callback on the public listener, and the
chat ports whose Approve clicks start a sign-in where the plan needs one.

Installed only when access rules are configured (``[templates.*]`` / ``[step_up]``). In the
embedded default the in-process simulated tenant signs approvers in; against Entra the
bot's app registration does (``[step_up].client_id``, default the tenant's client id;
secret ``BREAKGLASS_STEPUP_CLIENT_SECRET``, default the Graph client secret). The redirect
URI is ``service.public_url`` + ``/v1/stepup/callback``, or this listener's address once it
is known (``listening``). The flow of each service is kept here, keyed by the service.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import aiohttp
from aiohttp import web

from adapters.entra_signin import CALLBACK_PATH, SignInConfig, StepUpFlow, StoredPendingSignIns
from adapters.entra_signin.jobs import StepUpJobs
from adapters.entra_signin.routes import add_callback_route
from adapters.graph.simulated import issuer_for
from adapters.graph.simulated.directory import default_seed
from engine.chat_ports import JobCommands

if TYPE_CHECKING:
    from adapters.graph.simulated import SimulatedTenant
    from bot.assembly import Assembly
    from bot.service import JobService

log = logging.getLogger("breakglass.stepup")
_FLOWS: WeakKeyDictionary[JobService, _Installed] = WeakKeyDictionary()


class _Installed:
    def __init__(self, flow: StepUpFlow, simulator: SimulatedTenant | None) -> None:
        self.flow = flow
        self.simulator = simulator


def install_step_up(app: web.Application, parts: Assembly) -> StepUpFlow | None:
    """Mount the callback and remember the flow for ``parts.service``; None when the
    configuration needs no step-up or names no way to sign approvers in."""
    config = _config(parts)
    if config is None:
        return None
    session = aiohttp.ClientSession()

    async def close(_app: web.Application) -> None:
        await session.close()

    app.on_cleanup.append(close)
    pending = StoredPendingSignIns(parts.store)  # any replica may take the callback
    flow = StepUpFlow(config, _plain(parts), session, parts.clock, pending=pending)
    add_callback_route(app, flow)
    _FLOWS[parts.service] = _Installed(flow, parts.simulator)
    if config.redirect_uri:
        _register(parts.simulator, config.redirect_uri)
    return flow


def _plain(parts: Assembly) -> JobCommands:
    from bot.job_commands import ServiceJobs  # here: job_commands imports this module

    return ServiceJobs(parts.service)


def listening(service: JobService, base_url: str) -> None:
    """The listener's address is known: the redirect URI, when no public URL was set."""
    installed = _FLOWS.get(service)
    if installed is None or installed.flow.config.redirect_uri:
        return
    redirect = f"{base_url.rstrip('/')}{CALLBACK_PATH}"
    installed.flow.config = replace(installed.flow.config, redirect_uri=redirect)
    _register(installed.simulator, redirect)


def with_step_up(service: JobService, jobs: JobCommands) -> JobCommands:
    """``jobs`` whose Approve clicks start a sign-in where the plan needs one."""
    installed = _FLOWS.get(service)
    return jobs if installed is None else StepUpJobs(jobs, installed.flow)


def _register(simulator: SimulatedTenant | None, redirect: str) -> None:
    if simulator is not None:
        simulator.register_redirect_uri(redirect)


def simulated_config(sim: SimulatedTenant, redirect: str) -> SignInConfig:
    """Approvers sign in at the simulated tenant (its app registration and keys)."""
    return SignInConfig(
        authority_url=sim.base_url,
        tenant_id=sim.tenant_id,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        redirect_uri=redirect,
        issuer=sim.signin_issuer,
    )


def remote_simulated_config(base_url: str, secret: str, redirect: str) -> SignInConfig:
    """Approvers sign in at a simulated tenant another process runs; whoever runs it
    registers the redirect URI, as an Entra admin registers it on the app."""
    seed = default_seed()
    tenant_id = seed["tenantId"]
    return SignInConfig(
        authority_url=base_url,
        tenant_id=tenant_id,
        client_id=seed["application"]["appId"],
        client_secret=secret,
        redirect_uri=redirect,
        issuer=issuer_for(base_url, tenant_id),
    )


def _config(parts: Assembly) -> SignInConfig | None:
    settings = parts.settings
    if settings.access is None:
        return None
    public = settings.public_url.rstrip("/")
    redirect = f"{public}{CALLBACK_PATH}" if public else ""
    if parts.simulator is not None:
        return simulated_config(parts.simulator, redirect)
    tenant = settings.tenant
    if tenant.simulated_url:  # a simulated tenant in another process (the demo's)
        return remote_simulated_config(tenant.simulated_url, tenant.simulated_secret, redirect)
    if tenant.mode != "graph":
        log.warning(
            "step-up needs the in-process simulated tenant or Entra; approvals of "
            "plans that require it will be refused"
        )
        return None
    secret = settings.step_up_client_secret or tenant.client_secret
    return SignInConfig(
        authority_url=tenant.authority_url,
        tenant_id=tenant.tenant_id,
        client_id=str(settings.step_up.get("client_id") or tenant.client_id),
        client_secret=secret,
        redirect_uri=redirect,
        prompt_login=bool(settings.step_up.get("prompt_login", True)),
    )
