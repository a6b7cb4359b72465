"""The OpenClaw executor: OpenClaw drives the model, our gateways decide.

It implements ExecutorPort like the runbook and agent executors. For each job it binds the
job to the MCP gateway, writes a config generated from the signed WPC into a fresh HOME
under the service's home, and runs ``openclaw agent exec`` as a child process group. Model
calls go to our receipting proxy with the job's CST; tool calls go through the MCP gateway
to the tool gateway. A halt (Kill, window end, emergency halt: the service has revoked the
CST first) stops the process group, SIGTERM then SIGKILL after a grace.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.openclaw.config import RunConfig, openclaw_config, write_config
from adapters.openclaw.install import DEFAULT_ROOT, Installation, find_installation
from adapters.openclaw.mcp_gateway import McpGateway
from adapters.openclaw.names import openclaw_name
from adapters.openclaw.runner import HALT_GRACE_SECONDS, OpenClawProcess, RunFiles, RunOutcome
from bot.agent_prompt import SYSTEM_PROMPT, objective, offer_for, plan_steps, render_plan
from bot.gateway_service import ToolGateway
from bot.scripted_model import SCRIPTED_MODEL_ID
from engine.errors import BreakGlassError
from engine.lifecycle import END_EXECUTOR_FAILED, ExecutorFailed, ExecutorStopped
from engine.timeutil import parse_iso
from engine.tools import ToolRole
from engine.wpc import Policy

log = logging.getLogger("breakglass.openclaw")
_PATH_SAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class OpenClawConfig:
    proxy_url: str  # the model proxy's base URL, e.g. http://127.0.0.1:8080/v1
    home: Path  # the service's home: runs get their own HOME under home/openclaw/
    model: str = SCRIPTED_MODEL_ID
    install_root: Path = DEFAULT_ROOT
    max_run_seconds: int = 600  # also bounded by the time left in the window
    halt_grace_seconds: float = HALT_GRACE_SECONDS


@dataclass
class _Run:
    job_id: str
    secret: str
    files: RunFiles
    process: OpenClawProcess
    watch: asyncio.Task[RunOutcome] | None = None


@dataclass
class _State:
    runs: dict[str, _Run] = field(default_factory=dict)
    outcomes: dict[str, RunOutcome] = field(default_factory=dict)  # the last, by job
    starting: set[str] = field(default_factory=set)
    halted_while_starting: set[str] = field(default_factory=set)
    receipts: set[asyncio.Task[None]] = field(default_factory=set)  # runs' ends, in the chain


class OpenClawExecutor:
    def __init__(self, gateway: ToolGateway, config: OpenClawConfig) -> None:
        self.gateway = gateway
        self.config = config
        self.mcp = McpGateway(gateway)
        self._state = _State()
        self._install: Installation | None = None

    @property
    def outcomes(self) -> Mapping[str, RunOutcome]:
        return self._state.outcomes

    def process(self, job_id: str) -> OpenClawProcess | None:
        run = self._state.runs.get(job_id)
        return run.process if run is not None else None

    async def start(self, job: Mapping[str, Any], token: str) -> None:
        job_id = str(job["job_id"])
        running = self._state.runs.get(job_id)
        if job_id in self._state.starting or (running is not None and running.process.running):
            return
        seconds = self._seconds_left(job)
        if seconds <= 0:
            log.warning("openclaw for %s not started: the window has ended", job_id)
            return
        self._state.starting.add(job_id)  # a second start while this one awaits is a no-op
        try:
            run = await self._launch(job, token, seconds)
        except (BreakGlassError, OSError) as err:  # the job's window and kill still apply
            log.error("openclaw for %s could not start: %s", job_id, err)
            self._state.halted_while_starting.discard(job_id)
            return
        finally:
            self._state.starting.discard(job_id)
        run.watch = asyncio.ensure_future(self._watch(run))
        self._state.runs[job_id] = run
        if job_id in self._state.halted_while_starting:  # a Kill came in while we launched
            self._state.halted_while_starting.discard(job_id)
            await self.halt(job_id)

    async def refresh(self, job: Mapping[str, Any], token: str) -> None:
        """An extension: tool calls carry the new token. Model calls keep the CST written
        into the run's config until the run ends (docs/openclaw.md, limits)."""
        self.mcp.refresh(str(job["job_id"]), token)

    async def halt(self, job_id: str) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after the grace), then let the
        gateway settle the tool call in flight. The CST is already revoked by the service."""
        if job_id in self._state.starting:
            self._state.halted_while_starting.add(job_id)  # start() stops what it launches
        run = self._state.runs.get(job_id)
        if run is not None:
            if run.process.running:
                outcome = await run.process.stop(self.config.halt_grace_seconds)
                log.info("openclaw for %s halted: %s", job_id, outcome.summary())
            if run.watch is not None:
                await asyncio.wait({run.watch})
        await self.gateway.settle(job_id)

    async def wait_idle(self) -> None:
        """For tests and shutdown: wait until every started run has ended."""
        watches = {r.watch for r in self._state.runs.values() if r.watch is not None}
        if watches:
            await asyncio.wait(watches)
        if self._state.receipts:
            await asyncio.wait(set(self._state.receipts))

    async def close(self) -> None:
        for job_id in list(self._state.runs):
            await self.halt(job_id)
        if self._state.receipts:  # the halts' receipts reach the chain before we go
            await asyncio.wait(set(self._state.receipts))
        await self.mcp.close()

    # ------------------------------------------------------------------ one run

    async def _launch(self, job: Mapping[str, Any], token: str, seconds: int) -> _Run:
        self._install = self._install or find_installation(self.config.install_root)
        if not self.mcp.url:
            await self.mcp.start()
        job_id = str(job["job_id"])
        policy = Policy.from_payload(job["plan"]["payload"])
        tools = policy.tools_with_role({ToolRole.WRITE, ToolRole.READ})
        secret = self.mcp.bind(job_id, token, tools)
        run_config = RunConfig(
            self.config.proxy_url, self.config.model, self.mcp.url, tools, token, secret
        )
        files = await asyncio.to_thread(self._prepare, job_id, run_config)
        message = openclaw_message(job, policy)
        try:
            process = await OpenClawProcess.start(self._install, files, message, seconds)
        except OSError:
            self.mcp.unbind(secret)
            await asyncio.to_thread(shutil.rmtree, files.home, True)
            raise
        log.info("openclaw for %s started (pid %s, %ss)", job_id, process.proc.pid, seconds)
        return _Run(job_id, secret, files, process)

    def _prepare(self, job_id: str, run: RunConfig) -> RunFiles:
        base = self.config.home.resolve() / "openclaw"
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        home = Path(tempfile.mkdtemp(prefix=_PATH_SAFE.sub("_", job_id)[:64] + "-", dir=base))
        workdir = home / "work"
        workdir.mkdir(mode=0o700)
        config = write_config(home / "openclaw.json", openclaw_config(run))
        return RunFiles(home, config, workdir)

    async def _watch(self, run: _Run) -> RunOutcome:
        """The run's end: its outcome is kept and logged, the job's secret unbound (only
        now: calls racing a halt still reach the gateway and are refused there) and the
        run's HOME, with the CST in its config, deleted."""
        outcome = await run.process.wait()
        self._state.outcomes[run.job_id] = outcome
        level = logging.INFO if outcome.ok or outcome.halted else logging.WARNING
        log.log(level, "openclaw for %s ended: %s", run.job_id, outcome.summary())
        self.mcp.unbind(run.secret)
        await asyncio.to_thread(shutil.rmtree, run.files.home, True)
        # Its own task: a halt runs inside the job's command, which this must not wait on.
        task = self.gateway.service.tasks.spawn(
            self._receipt(run.job_id, outcome), f"openclaw-stopped:{run.job_id}"
        )
        self._state.receipts.add(task)
        task.add_done_callback(self._state.receipts.discard)
        return outcome

    async def _receipt(self, job_id: str, outcome: RunOutcome) -> None:
        """Receipt the run's end in the job's chain; a failed run that was not halted ends
        the window like the runbook's failed write (the rollback undoes what may be done)."""
        service = self.gateway.service
        said = await service.command(job_id, stopped_command(outcome))
        if not said.ok:  # the chain is closed (the job ended first): the log keeps it
            log.info("openclaw end for %s not receipted (%s)", job_id, said.reason)
        if outcome.ok or outcome.halted:
            return
        why = outcome.error or f"status {outcome.status}, {outcome.tool_failures} failed calls"
        failed = await service.command(job_id, ExecutorFailed(END_EXECUTOR_FAILED, why[:300]))
        if not failed.ok:
            log.info("openclaw failure for %s did not end the window (%s)", job_id, failed.reason)

    def _seconds_left(self, job: Mapping[str, Any]) -> int:
        end = job.get("window_end")
        if not end:
            return self.config.max_run_seconds
        left = (parse_iso(str(end)) - self.gateway.service.clock()).total_seconds()
        return min(self.config.max_run_seconds, int(left))


def stopped_command(outcome: RunOutcome) -> ExecutorStopped:
    """The chain's record of a run's end: counts and codes, never model text."""
    code = outcome.exit_code
    by_signal = None
    if code is not None and code < 0:
        by_signal = signal.Signals(-code).name
    elif code == 128 + signal.SIGTERM and outcome.halted:  # Node exits 143 on our SIGTERM
        by_signal = "SIGTERM"
    return ExecutorStopped(
        reason="halted" if outcome.halted else "exited",
        exit_code=code,
        signal=by_signal,
        status=outcome.status,
        tool_calls=outcome.tool_calls,
        failures=outcome.tool_failures,
    )


def openclaw_message(job: Mapping[str, Any], policy: Policy) -> str:
    """The agent executor's objective, with the plan naming the tools as OpenClaw offers
    them (``breakglass__<mcp name>``), after our system prompt (OpenClaw has its own)."""
    steps = plan_steps(policy.terms, bool(job.get("write_done")))
    names = offer_for(policy).names
    renamed = [s | {"tool": openclaw_name(names.get(s["tool"], s["tool"]))} for s in steps]
    text = objective(job, policy).replace(render_plan(steps), render_plan(renamed))
    return f"{SYSTEM_PROMPT}\n\n{text}"
