"""The job service over a simulated tenant that stops accepting our app: the harness of
``test_tenant_refuses_app.py`` (docs/notes/tenant-refuses-app.md).

As ``sim_env`` (``conftest.py``, ``simulated.py``): the real JobService, ToolGateway,
RunbookExecutor and Graph adapter (GraphTools, MSAL) against the strict SimulatedTenant on
loopback, on a manual clock. Two differences:

* access tokens live 10 minutes (``TOKEN_LIFETIME``, the least a token lifetime policy
  allows in Entra): a token already issued stays valid after the app is refused, as in
  Entra, so a refusal bites when the token is renewed, inside the window or its rollback;
* the service's sleep runs what a test scheduled for the moment the clock passes
  (``Schedule``), so the tenant can change in the middle of a rollback without a race.

``restart`` stops the service and starts another over the same store with the tenant's
current secret: what an operator does after putting a new secret in place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.graph import GraphTools
from adapters.graph.simulated import Fault, ManualClock, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from bot.app import SIMULATED_SEED
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from engine.job import ACTIVE, OPEN, Job
from engine.lifecycle import Approve
from tests.integration.graph.conftest import config_for, seeded_service
from tests.integration.service.simulated import (
    GROUP,
    IDS,
    RECEIPTS_EVERY,
    ROLE,
    SimEnv,
    alices_request,
)
from tests.support.fakes import RecordingChat

TOKEN_LIFETIME = timedelta(minutes=10)
TOKEN_PATH = "/oauth2/v2.0/token"
POLICY = SIMULATED_SEED["conditionalAccessPolicies"][1]["id"]  # excludes no group in the seed
TARGETS = {
    "entra-role": {"principal_id": IDS["dave"], "role_definition_id": ROLE},
    "ca-exclusion": {"policy_id": POLICY, "group_id": GROUP},
}
WRITE_PERMISSION = {  # what the template's write and removal need (docs/graph.md section 2)
    "entra-role": "RoleAssignmentSchedule.ReadWrite.Directory",
    "ca-exclusion": "Policy.ReadWrite.ConditionalAccess",
}


class SetupError(RuntimeError):
    """A precondition of the test did not hold: not the failure an xfail expects."""


def given(condition: bool, what: str) -> None:
    if not condition:
        raise SetupError(f"precondition failed: {what}")


@dataclass(frozen=True)
class Refusal:
    """One way the tenant stops accepting the app, and what the escalation should name."""

    name: str
    reason: str  # the tenant's refusal, as it should appear in the escalation

    def apply(self, sim: SimulatedTenant, template: str) -> None:
        if self.name == "secret expired":
            sim.expire_secret()
        elif self.name == "secret deleted":
            sim.replace_secret()  # the one the service holds is gone
        elif self.name == "app disabled":
            sim.set_app_enabled(False)
        elif self.name == "permission removed":
            sim.remove_permission(WRITE_PERMISSION[template])
        elif self.name == "token endpoint unreachable":
            sim.add_fault(Fault("drop", method="POST", path=TOKEN_PATH, times=10**6))
        else:
            raise SetupError(f"no such refusal: {self.name}")


REFUSALS = [
    Refusal("secret expired", "AADSTS7000222"),
    Refusal("secret deleted", "AADSTS7000215"),
    Refusal("app disabled", "AADSTS7000112"),
    Refusal("permission removed", "Authorization_RequestDenied"),
    Refusal("token endpoint unreachable", "TokenEndpointUnavailable"),
]


@dataclass
class Schedule:
    """The service's sleep on the manual clock; runs each planned change once the clock
    has passed its time (at the next sleep, or ``advance``). ``hold_at``: the job's rollback
    runner's first sleep that passes that time sets ``held`` and never returns (until the
    service's close cancels it): the rollback stands still there while the test restarts
    the service."""

    clock: ManualClock
    plans: list[tuple[datetime, Callable[[], Any]]] = field(default_factory=list)
    hold: datetime | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)

    def at(self, when: datetime, change: Callable[[], Any]) -> None:
        self.plans.append((when, change))

    def hold_at(self, when: datetime) -> None:
        self.hold = when

    async def __call__(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        task = asyncio.current_task()
        runner = task is not None and task.get_name().startswith("rollback:")
        if runner and self.hold is not None and self.clock.now() >= self.hold:
            self.hold = None
            self.held.set()
            await asyncio.Event().wait()  # cancelled by the service's close
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        due = [plan for plan in self.plans if plan[0] <= self.clock.now()]
        for plan in due:
            self.plans.remove(plan)
            plan[1]()


@dataclass
class Harness:
    env: SimEnv
    schedule: Schedule
    store: SqlStore
    tools: GraphTools
    home: Path
    token_expiry: tuple[datetime, datetime] | None = None  # earliest, latest (``approved``)

    @property
    def service(self) -> Any:
        return self.env.service

    @property
    def sim(self) -> SimulatedTenant:
        return self.env.sim

    async def restart(self) -> None:
        """Stop this service; start another on the same store with the tenant's secret."""
        await self.env.service.close()
        await self.env.settle()
        await self.tools.close()
        self.env, self.tools = _start(self.store, self.sim, self.schedule, self.home, self.env.chat)
        await self.env.service.resume()
        await self.env.settle()

    async def approved(self, template: str, approve_after: float = 0.0) -> Job:
        """Alice's request, then (``approve_after`` seconds later) Bob's and Carol's
        approvals: the job is active, its write done and verified. The request fetches the
        app's token: ``token_expiry`` says between when and when it expires (the chat's
        pacing moves the clock while the request settles)."""
        s = self.env.service
        requested = self.clock.now()
        out = await s.request(alices_request(self.env, template, TARGETS[template]))
        given(out.ok, f"the request is accepted: {out}")
        await self.env.settle()
        given(self.tokens_issued() == 1, "the request fetched the app's first token")
        self.token_expiry = (requested + TOKEN_LIFETIME, self.clock.now() + TOKEN_LIFETIME)
        self.schedule.advance(approve_after)
        for who in ("bob", "carol"):
            approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
            given((await s.command("job-input", approval)).ok, f"{who} approves")
        await self.env.settle()
        job: Job = await s.load("job-input")
        given(job.state == ACTIVE and job.write_done, f"{template} granted: {job.state}")
        given(job.verified_after_write is True, "the write was verified")
        given(self.tokens_issued() == 1, "the approvals and the write used that token")
        return job

    @property
    def clock(self) -> ManualClock:
        return self.schedule.clock

    def tokens_issued(self) -> int:
        return sum(e.path.endswith(TOKEN_PATH) and e.status == 200 for e in self.sim.requests_log)

    async def run_out(self) -> Job:
        """Tick every 30 s until the job resolves (bounded: 2 hours of clock)."""
        s = self.env.service
        for _ in range(240):
            await self.env.settle()
            job: Job = await s.load("job-input")
            if job.state not in OPEN:
                return job
            self.schedule.advance(30)
            await s.tick()
        raise AssertionError("the job never ended: still open after 2 hours of clock")


def _start(
    store: SqlStore, sim: SimulatedTenant, schedule: Schedule, home: Path, chat: RecordingChat
) -> tuple[SimEnv, GraphTools]:
    tools = GraphTools(config_for(sim), snapshots=store, clock=schedule.clock.now)
    service = seeded_service(
        store,
        tools,
        schedule.clock.now,
        sleep=schedule,
        bundle_dir=home / "bundles",
        receipts_every=RECEIPTS_EVERY,
    )
    executor = RunbookExecutor(ToolGateway(service))
    service.executor = executor
    service.notifier.register(chat)
    return SimEnv(service, executor, chat, schedule.clock, sim), tools


@asynccontextmanager
async def harness(home: Path) -> AsyncIterator[Harness]:
    clock = ManualClock()
    schedule = Schedule(clock)
    sim = SimulatedTenant(clock=clock, ca_interval=0.02, token_lifetime=TOKEN_LIFETIME)
    async with sim:
        store = await SqlStore.open(sqlite_url(home))
        env, tools = _start(store, sim, schedule, home, RecordingChat())
        h = Harness(env, schedule, store, tools, home)
        try:
            yield h
        finally:
            await h.env.service.close()
            await h.env.settle()
            await h.tools.close()
            await store.close()


def escalations(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if "ESCALATION" in r.getMessage()]
