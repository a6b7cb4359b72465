"""Step-up for the chat adapters' tests: the role template needs step-up, the simulated
tenant's Bob is an approver, the callback runs on its own loopback listener, and a browser
signs in with MFA and follows the redirect to the callback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

import aiohttp
from aiohttp import web
from yarl import URL

from adapters.entra_signin import CALLBACK_PATH, StepUpFlow
from adapters.entra_signin.routes import add_callback_route
from adapters.graph.simulated import SimulatedTenant
from bot.job_commands import ServiceJobs
from bot.service import JobService
from bot.stepup import simulated_config
from engine.access import access_from_config
from tests.integration.graph.support import BOB as BOB_OID


@asynccontextmanager
async def chat_step_up(
    service: JobService, sim: SimulatedTenant, clock: Callable[[], datetime]
) -> AsyncIterator[StepUpFlow]:
    access = access_from_config(
        {"entra-role": {"roles": ["*"], "principals": ["*"], "step_up": "required"}},
        {"authentication_context": "c1", "max_age_seconds": 300},
    )
    rules = service.rules
    service.rules = replace(rules, access=access, approvers=rules.approvers | {BOB_OID})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # the callback's port is known before its app is built
    host, port = listener.getsockname()[:2]
    redirect = f"http://{host}:{port}{CALLBACK_PATH}"
    sim.register_redirect_uri(redirect)
    async with aiohttp.ClientSession() as session:
        flow = StepUpFlow(simulated_config(sim, redirect), ServiceJobs(service), session, clock)
        app = web.Application()
        add_callback_route(app, flow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, listener).start()
        try:
            yield flow
        finally:
            await runner.cleanup()


async def sign_in(url: str, oid: str) -> int:
    """The approver's browser: sign in with MFA at the tenant, follow it to the callback."""
    async with aiohttp.ClientSession() as browser:
        form = {**URL(url).query, "user": oid, "mfa": "1"}
        async with browser.post(url, data=form, allow_redirects=False) as signed:
            assert signed.status == 302, await signed.text()
            callback = signed.headers["Location"]
        async with browser.get(callback, allow_redirects=False) as answer:
            return answer.status
