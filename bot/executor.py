"""The runbook executor: performs the planned write and its verification read through the
gateway with the job's agent token, no model involved. (The agent executor that drives a
model through the receipting proxy implements the same ExecutorPort.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from bot.gateway_service import ToolGateway
from engine.lifecycle import END_EXECUTOR_FAILED, END_WRITE_FAILED, ExecutorFailed

log = logging.getLogger("breakglass.executor")


class RunbookExecutor:
    def __init__(self, gateway: ToolGateway) -> None:
        self.gateway = gateway
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, job: Mapping[str, Any], token: str) -> None:
        job_id = str(job["job_id"])
        running = self._tasks.get(job_id)
        if running is not None and not running.done():
            return
        tasks = self.gateway.service.tasks
        self._tasks[job_id] = tasks.spawn(self._run(job, token), f"runbook:{job_id}")

    async def refresh(self, job: Mapping[str, Any], token: str) -> None:
        """The runbook's single write is already done; a new token needs no action."""

    async def halt(self, job_id: str) -> None:
        task = self._tasks.pop(job_id, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.gateway.settle(job_id)

    async def _run(self, job: Mapping[str, Any], token: str) -> None:
        job_id = str(job["job_id"])
        try:
            await self._steps(job, token)
        except Exception as exc:  # a bug or a store failure: the job ends, it is not left open
            log.exception("runbook for %s failed", job_id, extra={"job_id": job_id})
            report_failure(self.gateway, job_id, END_EXECUTOR_FAILED, type(exc).__name__)

    async def _steps(self, job: Mapping[str, Any], token: str) -> None:
        job_id = str(job["job_id"])
        terms = job["plan"]["payload"]["metadata"]["breakglass"]
        if not job.get("write_done"):
            action = terms["action"]
            outcome = await self.gateway.call(job_id, token, action["tool"], action["arguments"])
            if not outcome.allowed or outcome.status != "success":
                why = outcome.reason or str(outcome.result.get("error", outcome.status))
                log.warning("runbook write for %s did not succeed: %s", job_id, why)
                report_failure(self.gateway, job_id, END_WRITE_FAILED, why)
                return
        check = terms["verify_action"]
        await self.gateway.call(job_id, token, check["tool"], check["arguments"])

    async def wait_idle(self) -> None:
        """For tests and shutdown: wait until every started runbook has finished."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def report_failure(gateway: ToolGateway, job_id: str, reason: str, detail: str) -> None:
    """End the job's window because its executor failed. Sent as its own task: the halt
    this causes must not cut the report (or the chat posts after it) in half."""
    service = gateway.service
    command = ExecutorFailed(reason, detail[:300])
    service.tasks.spawn(service.command(job_id, command), f"executor-failed:{job_id}")
