"""The agent executor: a model decides the calls, the gateway decides whether they run.

It implements ExecutorPort like the runbook executor. Each run is a loop of model turns
through the receipting model proxy (over HTTP, with the job's CST) offering only the WPC's
write and read tools; every tool call the model makes goes to the gateway and its outcome
goes back to the model as a tool message (a refusal as the fact "refused: <reason>", never
retried around). The loop ends when the model answers without a tool call, at the step
limit, at the end of the window, or when the job halts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.agent_prompt import Offer, offer_for, opening_messages
from bot.executor import report_failure
from bot.gateway_service import GatewayOutcome, ToolGateway
from bot.model_client import ProxyClient, ToolCallRequest
from bot.scripted_model import SCRIPTED_MODEL_ID
from engine.canonical import strict_loads
from engine.errors import InputError, ModelError
from engine.lifecycle import END_EXECUTOR_FAILED, END_WRITE_FAILED
from engine.timeutil import parse_iso
from engine.wpc import Policy

log = logging.getLogger("breakglass.agent")


@dataclass(frozen=True)
class AgentConfig:
    proxy_url: str  # the model proxy's base URL, e.g. http://127.0.0.1:8080/v1
    model: str = SCRIPTED_MODEL_ID  # "openrouter/<model>" takes the fal OpenRouter route
    stream: bool = True
    max_steps: int = 8  # model turns per run
    read_timeout_seconds: float = 120.0


@dataclass
class _Run:
    job_id: str
    token: str
    window_end: datetime | None
    write_tool: str = ""  # the WPC's planned write: its failure ends the window
    task: asyncio.Task[None] | None = None
    calls: set[asyncio.Task[GatewayOutcome]] = field(default_factory=set)


class AgentExecutor:
    def __init__(self, gateway: ToolGateway, config: AgentConfig) -> None:
        self.gateway = gateway
        self.config = config
        self.client = ProxyClient(
            config.proxy_url,
            config.model,
            stream=config.stream,
            read_timeout=config.read_timeout_seconds,
        )
        self._runs: dict[str, _Run] = {}

    async def start(self, job: Mapping[str, Any], token: str) -> None:
        job_id = str(job["job_id"])
        running = self._runs.get(job_id)
        if running is not None and running.task is not None and not running.task.done():
            return
        write_tool = str(job["plan"]["payload"]["metadata"]["breakglass"]["action"]["tool"])
        run = _Run(job_id, token, _window_end(job), write_tool)
        run.task = self.gateway.service.tasks.spawn(self._drive(run, job), f"agent:{job_id}")
        self._runs[job_id] = run

    async def refresh(self, job: Mapping[str, Any], token: str) -> None:
        """An extension: the running loop continues with the new token and window."""
        run = self._runs.get(str(job["job_id"]))
        if run is not None:
            run.token = token
            run.window_end = _window_end(job)

    async def halt(self, job_id: str) -> None:
        """Cancel the loop at once (an in-flight model stream too), then let the gateway
        settle the tool call in flight: it completes or is receipted as cancelled."""
        run = self._runs.get(job_id)
        if run is not None and run.task is not None:
            run.task.cancel()
            await asyncio.wait({run.task})
        await self.gateway.settle(job_id)
        if run is not None and run.calls:
            await asyncio.wait(set(run.calls))  # their receipts are written
        if run is not None and self._runs.get(job_id) is run:
            del self._runs[job_id]

    async def wait_idle(self) -> None:
        """For tests and shutdown: wait until every started run has finished."""
        tasks = {r.task for r in self._runs.values() if r.task is not None and not r.task.done()}
        if tasks:
            await asyncio.wait(tasks)

    async def close(self) -> None:
        for job_id in list(self._runs):
            await self.halt(job_id)
        await self.client.close()

    # ---------------------------------------------------------------------- loop

    async def _drive(self, run: _Run, job: Mapping[str, Any]) -> None:
        try:
            await self._loop(run, job)
        except ModelError as err:
            log.warning("agent for %s stopped: %s", run.job_id, err)
        except TimeoutError:
            log.warning("agent for %s stopped: the window ended", run.job_id)
        except Exception as exc:  # the agent cannot go on: end the window, roll back
            log.exception("agent for %s crashed; ending its window", run.job_id)
            report_failure(self.gateway, run.job_id, END_EXECUTOR_FAILED, type(exc).__name__)

    async def _loop(self, run: _Run, job: Mapping[str, Any]) -> None:
        policy = Policy.from_payload(job["plan"]["payload"])
        offer = offer_for(policy)
        messages: list[Mapping[str, Any]] = list(opening_messages(job, policy))
        for turn in range(1, self.config.max_steps + 1):
            async with asyncio.timeout(self._seconds_left(run)):
                reply = await self.client.chat(run.token, messages, offer.tools)
            messages.append(reply.message)
            if not reply.tool_calls:
                log.info("agent for %s done after %d model turns", run.job_id, turn)
                return
            for call in reply.tool_calls:
                messages.append(await self._tool_message(run, offer, call))
        log.warning("agent for %s stopped at the step limit", run.job_id)

    def _seconds_left(self, run: _Run) -> float:
        if run.window_end is None:
            return self.config.read_timeout_seconds
        left = (run.window_end - self.gateway.service.clock()).total_seconds()
        if left <= 0:
            raise TimeoutError("the window has ended")
        return left

    async def _tool_message(self, run: _Run, offer: Offer, call: ToolCallRequest) -> dict[str, Any]:
        name = offer.real_name(call.name)
        outcome = await self._gateway_call(run, name, _arguments(call))
        if name == run.write_tool and (not outcome.allowed or outcome.status != "success"):
            why = outcome.reason or str(outcome.result.get("error", outcome.status))
            log.warning("agent write for %s did not succeed: %s", run.job_id, why)
            report_failure(self.gateway, run.job_id, END_WRITE_FAILED, why)
        if outcome.allowed:
            content = json.dumps({"status": outcome.status, "result": dict(outcome.result)})
        else:
            content = f"refused: {outcome.reason}"
        return {"role": "tool", "tool_call_id": call.call_id, "content": content}

    async def _gateway_call(self, run: _Run, name: str, arguments: object) -> GatewayOutcome:
        """Halting cancels the loop, not the receipting of a call: the call runs as its own
        task, so the job's transition it causes (a kill, say) is never cut in half."""
        work = self.gateway.call(run.job_id, run.token, name, arguments)
        task = self.gateway.service.tasks.spawn(work, f"agent-call:{run.job_id}")
        run.calls.add(task)
        task.add_done_callback(run.calls.discard)
        return await asyncio.shield(task)


def _arguments(call: ToolCallRequest) -> object:
    """The model's arguments as an object, or as written (the gateway refuses non-objects)."""
    try:
        return strict_loads(call.arguments or "{}", floats=True)
    except InputError:
        return call.arguments


def _window_end(job: Mapping[str, Any]) -> datetime | None:
    end = job.get("window_end")
    return parse_iso(end) if end else None
