"""The runbook executor: performs the planned write and its verification read through the
gateway with the job's agent token, no model involved. (The agent executor that drives a
model through the receipting proxy implements the same ExecutorPort.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from bot.gateway_service import ToolGateway

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
        self._tasks[job_id] = asyncio.ensure_future(self._run(job, token))

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
        terms = job["plan"]["payload"]["metadata"]["breakglass"]
        if not job.get("write_done"):
            action = terms["action"]
            outcome = await self.gateway.call(job_id, token, action["tool"], action["arguments"])
            if not outcome.allowed or outcome.status != "success":
                log.warning(
                    "runbook write for %s did not succeed: %s",
                    job_id,
                    outcome.reason or outcome.status,
                )
        check = terms["verify_action"]
        await self.gateway.call(job_id, token, check["tool"], check["arguments"])

    async def wait_idle(self) -> None:
        """For tests and shutdown: wait until every started runbook has finished."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
