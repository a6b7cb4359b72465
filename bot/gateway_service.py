"""The tool gateway as a service: decide (pure), execute through the tool port, receipt.

Every allowed and every refused call is receipted in the job's chain, in the same
transaction as the job change it causes. Transport stays out: :meth:`ToolGateway.call` is
the in-process API its callers (the executors) use; it has no HTTP route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bot import metrics
from bot.held_records import HeldRecords
from bot.ids import receipt_id as new_receipt_id
from bot.pinned_policies import PinnedPolicies
from bot.service import JobService
from engine.containment import CREDENTIAL_WRITES
from engine.cst import TokenKind
from engine.errors import (
    AdapterError,
    GatewayRefusal,
    InputError,
    JobNotFound,
    StoreError,
    VerificationError,
)
from engine.gateway import Allowed, GatewayView, ToolCall, decide, recorded_call
from engine.job import Job
from engine.lifecycle import ToolCallRecorded, WriteSending
from engine.lifecycle.calls import is_planned_write
from engine.tools import ToolResult, ToolRole
from engine.wpc import Policy

log = logging.getLogger("breakglass.gateway")


@dataclass(frozen=True)
class GatewayOutcome:
    allowed: bool
    status: str  # success | error | refused
    receipt_id: str
    result: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "allowed": self.allowed,
            "status": self.status,
            "receipt_id": self.receipt_id,
        }
        if self.allowed:
            body["result"] = dict(self.result)
        else:
            body["reason"] = self.reason
        return body


class ToolGateway:
    def __init__(self, service: JobService) -> None:
        self.service = service
        service.gateway = self
        self._policies = PinnedPolicies()
        self._tools: dict[str, set[asyncio.Task[ToolResult]]] = {}  # tool runs in flight
        self._calls: dict[str, set[asyncio.Task[GatewayOutcome]]] = {}  # run + receipt
        # Credential writes allowed but not yet receipted, per job, by receipt id: two
        # concurrent writes must not both pass the limit on a job that has recorded neither
        # yet (nor count twice once their in-flight mark is in the job as well).
        self._credential_writes: dict[str, set[str]] = {}
        self.held = HeldRecords(service)  # the rollback's receipts the store refused

    def _policy(self, job: Job) -> Policy:
        try:
            return self._policies.of(job, self.service.keys.publisher.did, GatewayRefusal)
        except VerificationError as exc:
            # Not this replica's publisher key (a replica with other keys), or a damaged
            # document: refused and receipted like any refusal, so a rollback runs to its end.
            raise GatewayRefusal("POLICY_INVALID", exc.code) from exc

    async def call(
        self, job_id: str, token: object, tool_name: object, arguments: object
    ) -> GatewayOutcome:
        """Decide, run and receipt one tool call. Refusals are outcomes, not exceptions."""
        try:
            job = await self.service.peek(job_id)
        except JobNotFound:
            log.warning("tool call for unknown job %s refused", job_id[:64])
            return GatewayOutcome(False, "refused", "", reason="JOB_UNKNOWN")
        args = arguments if isinstance(arguments, Mapping) else {}
        call = ToolCall(tool_name if isinstance(tool_name, str) else "", args)
        started = self.service.clock()
        receipt_id = new_receipt_id("tr", job_id)
        try:
            allowed = await self._decide(job, call, token, arguments, receipt_id)
        except GatewayRefusal as refusal:
            return await self._refused(job_id, call, token, refusal)
        except StoreError as exc:  # whether its token is revoked is unknown: not sent
            log.warning(
                "%s on %s refused: the store could not say whether its token is revoked (%s)",
                call.tool_name[:80],
                job_id,
                str(exc)[:200],
                extra={"job_id": job_id},
            )
            unknown = GatewayRefusal("STORE_UNAVAILABLE", "the revocation check failed")
            return await self._refused(job_id, call, token, unknown)
        sending = _in_flight_mark(job, call, allowed, receipt_id)
        if sending is not None:
            # Durably "in flight" before it leaves: a crash, or a store that refuses its
            # receipt, cannot hide it. Not recorded, not sent.
            unsent = await self._mark(job_id, call, sending)
            if unsent is not None:
                t0 = time.perf_counter()
                result = ToolResult("error", unsent)
                return await self._record_allowed(
                    job_id, call, allowed, receipt_id, result, t0, started
                )
        return await self._execute(job_id, call, allowed, receipt_id, started)

    async def _mark(
        self, job_id: str, call: ToolCall, sending: WriteSending
    ) -> dict[str, Any] | None:
        """Record ``sending``; None when it is recorded, else the error result of a write
        that is not sent (the job ended since the decision, or the store refused)."""
        try:
            marked = await self.service.command(job_id, sending)
        except StoreError as exc:  # its text names the database: the log only
            log.error(
                "%s on %s not sent: the store refused to record it in flight (%s)",
                call.tool_name[:80],
                job_id,
                str(exc)[:200],
                extra={"job_id": job_id},
            )
            return {"error": "STORE_UNAVAILABLE", "sent": False}
        if not marked.ok:  # the job ended since the decision (or stayed busy): not sent
            return {"error": "WRITE_NOT_SENT", "reason": marked.reason, "sent": False}
        return None

    async def refuse(
        self, job_id: str, token: object, tool_name: object, arguments: object, detail: str
    ) -> GatewayOutcome:
        """Refuse and receipt, undecided, a call its transport could not read (a malformed
        MCP request): it is in the chain and the log like any refused call, never run."""
        try:
            await self.service.peek(job_id)
        except JobNotFound:
            return GatewayOutcome(False, "refused", "", reason="JOB_UNKNOWN")
        args = arguments if isinstance(arguments, Mapping) else {}
        call = ToolCall(tool_name if isinstance(tool_name, str) else "", args)
        return await self._refused(job_id, call, token, GatewayRefusal("CALL_MALFORMED", detail))

    async def _refused(
        self, job_id: str, call: ToolCall, token: object, refusal: GatewayRefusal
    ) -> GatewayOutcome:
        receipt_id = new_receipt_id("tr", job_id)
        command = recorded_call(
            call, receipt_id=receipt_id, latency_ms=0, refusal=refusal, token=token
        )
        try:
            unchained = await self._record(job_id, command)
        except StoreError:  # refused all the same (a full disk must not let a call through)
            unchained = "the store refuses writes"
        log.info(
            "refused %s on %s: %s%s",
            call.tool_name[:80],
            job_id,
            refusal.reason,
            f" (not receipted: {unchained})" if unchained else "",
            extra={"job_id": job_id, "reason": refusal.reason},
        )
        metrics.REFUSALS.labels(refusal.reason).inc()
        return GatewayOutcome(False, "refused", receipt_id, reason=public_reason(refusal.reason))

    async def _decide(
        self, job: Job, call: ToolCall, token: object, raw_args: object, receipt_id: str
    ) -> Allowed:
        if not isinstance(raw_args, Mapping):
            raise GatewayRefusal("ARGUMENTS_INVALID", "arguments are not an object")
        # Created, or allowed and not yet settled: in flight here, or in doubt in the job.
        pending = self._credential_writes.get(job.job_id, set())
        in_doubt = pending | {str(m.get("receipt_id")) for m in job.credentials_in_flight}
        view = GatewayView(
            job_id=job.job_id,
            policy=self._policy(job),
            trusted_issuers={self.service.keys.issuer.did},
            is_revoked=partial(self.service.knows_revoked, job),
            credentials_added=len(job.derived_rollback) + len(in_doubt),
            tool_receipts=job.tool_receipts,
        )
        allowed = decide(call, token, view, self.service.clock())
        credential = allowed.spec.name in CREDENTIAL_WRITES
        if credential:  # counted from the decision on, with no await in between
            self._credential_writes.setdefault(job.job_id, set()).add(receipt_id)
        # The durable view too: a jti revoked by another replica or by the CLI.
        try:
            if await self.service.store.is_revoked(allowed.token.jti):
                raise GatewayRefusal("TOKEN_REVOKED", allowed.token.jti)
        except (GatewayRefusal, StoreError):  # not sent: no longer counted in flight
            if credential:
                self._credential_written(job.job_id, receipt_id)
            raise
        return allowed

    def _credential_written(self, job_id: str, receipt_id: str) -> None:
        """A credential write allowed earlier is receipted (or was never sent): the job's
        own records (derived, or in doubt) count it from now on."""
        pending = self._credential_writes.get(job_id, set())
        pending.discard(receipt_id)
        if not pending:
            self._credential_writes.pop(job_id, None)

    async def _execute(
        self, job_id: str, call: ToolCall, allowed: Allowed, receipt_id: str, started: Any
    ) -> GatewayOutcome:
        """Run the tool and receipt it as one tracked task: a caller that goes away (a halted
        agent, a dropped HTTP request) never leaves a call unreceipted."""
        task = self.service.tasks.spawn(
            self._run_and_record(job_id, call, allowed, receipt_id, started), f"tool:{job_id}"
        )
        if _settled(allowed):
            _track(self._calls, job_id, task)
        return await asyncio.shield(task)

    async def _run_and_record(
        self, job_id: str, call: ToolCall, allowed: Allowed, receipt_id: str, started: Any
    ) -> GatewayOutcome:
        tool = self.service.tasks.spawn(self._run_tool(call), f"tool-call:{job_id}")
        if _settled(allowed):
            _track(self._tools, job_id, tool)
        t0 = time.perf_counter()
        try:
            result = await tool
        except asyncio.CancelledError:  # settle() or shutdown: the call is receipted as such
            tool.cancel()
            result = ToolResult("error", {"error": "CANCELLED", "cancelled": True})
        return await self._record_allowed(job_id, call, allowed, receipt_id, result, t0, started)

    async def _record_allowed(
        self,
        job_id: str,
        call: ToolCall,
        allowed: Allowed,
        receipt_id: str,
        result: ToolResult,
        t0: float,
        started: Any,
    ) -> GatewayOutcome:
        metrics.GATEWAY_SECONDS.observe(time.perf_counter() - t0)
        latency = int((time.perf_counter() - t0) * 1000)
        command = recorded_call(
            call,
            receipt_id=receipt_id,
            latency_ms=latency,
            allowed=allowed,
            result=result,
            started_at=started,
        )
        credential = allowed.spec.name in CREDENTIAL_WRITES
        rollback = allowed.token.kind == TokenKind.ROLLBACK
        try:
            if rollback:  # what the rollback did is known: held if refused (bot.held_records)
                unchained = await self.held.chain(job_id, command)
            else:
                unchained = await self._record(job_id, command)
        except StoreError as exc:
            if not _said_unrecorded(job_id, call, allowed, result, exc):
                raise
            # The caller gets the tool's answer (what happened), with no receipt id.
            return GatewayOutcome(True, command.status, "", result=result.body)
        finally:
            if credential:
                self._credential_written(job_id, receipt_id)
        if unchained:  # the job ended between the decision and the receipt
            log.warning(
                "receipt for %s on %s not chained: %s", call.tool_name[:80], job_id, unchained
            )
        return GatewayOutcome(True, command.status, receipt_id, result=result.body)

    async def _run_tool(self, call: ToolCall) -> ToolResult:
        """The tool's answer; any exception becomes an error result, so it is receipted."""
        try:
            return await self.service.tools.call(call.tool_name, call.arguments)
        except InputError as exc:  # refused by the adapter's own checks: nothing was sent
            return ToolResult(
                "error", {"error": "INVALID_ARGUMENT", "message": str(exc)[:300], "sent": False}
            )
        except AdapterError as exc:
            code = getattr(exc, "code", type(exc).__name__)
            return ToolResult("error", {"error": str(code), "message": str(exc)[:300]})
        except Exception as exc:  # a bug or a foreign error: its text may hold anything
            log.error("tool %s raised %s", call.tool_name[:80], type(exc).__name__, exc_info=True)
            return ToolResult("error", {"error": "TOOL_FAILED", "exception": type(exc).__name__})

    async def _record(self, job_id: str, command: ToolCallRecorded) -> str:
        """Chain the receipt; the reason it was not ("" when it was). A closed chain takes
        no more receipts, nor one past the agent's call limit: the caller logs those."""
        outcome = await self.service.command(job_id, command)
        return "" if outcome.ok else outcome.reason

    def stop_calls(self, job_id: str) -> None:
        """Cancel the job's in-flight agent tool runs (each is still receipted)."""
        for tool in list(self._tools.get(job_id, ())):
            tool.cancel()

    async def settle(self, job_id: str) -> None:
        """Cancel the job's in-flight agent calls and wait until each is receipted."""
        self.stop_calls(job_id)
        calls = list(self._calls.get(job_id, ()))
        if calls:
            await asyncio.gather(*calls, return_exceptions=True)


def _in_flight_mark(
    job: Job, call: ToolCall, allowed: Allowed, receipt_id: str
) -> WriteSending | None:
    """The mark an agent's write needs before it leaves: the planned write's (it may have
    landed from then on), a credential write's (a credential may exist from then on, which
    only its receipt derives a removal for); None for reads and the rollback's calls."""
    if is_planned_write(job, call.tool_name, allowed.spec.role):
        return WriteSending()
    if allowed.spec.name in CREDENTIAL_WRITES:
        return WriteSending(allowed.spec.name, receipt_id, dict(call.arguments))
    return None


def _said_unrecorded(
    job_id: str, call: ToolCall, allowed: Allowed, result: ToolResult, refused: StoreError
) -> bool:
    """The store refused the receipt of an agent's write: log it, if its in-flight mark
    stands for it (True). A credential write that was sent is an ERROR naming what it
    created, known only here (the key id; never the secret, which no tool result holds):
    its mark stays in the job, and the end removes what it may have created (ADR 0020). A
    write not sent changed nothing."""
    sent = result.body.get("sent") is not False
    if allowed.spec.name in CREDENTIAL_WRITES and sent:
        log.error(
            "credential write %s on %s was sent but the store refused its receipt (%s): "
            "application %s, key id %s; it stays in flight in the job: the window's end "
            "removes every password the job marked there, or names it",
            call.tool_name[:80],
            job_id,
            str(refused)[:200],
            str(call.arguments.get("application_id", "?"))[:64],
            str(result.body.get("key_id") or "none returned")[:64],
            extra={"job_id": job_id, "escalation": True},
        )
        return True
    if allowed.spec.role == ToolRole.WRITE and not sent:
        log.warning(
            "%s on %s was not sent; the store refused its receipt too (%s)",
            call.tool_name[:80],
            job_id,
            type(refused).__name__,
            extra={"job_id": job_id},
        )
        return True
    return False


def _settled(allowed: Allowed) -> bool:
    """Does settle() stop this call? The agent's, yes; never the rollback's own calls (a
    halt that runs late must not cancel the removal it made way for)."""
    return allowed.token.kind != TokenKind.ROLLBACK


def _track(index: dict[str, set[Any]], job_id: str, task: asyncio.Task[Any]) -> None:
    """Keep ``task`` under ``job_id`` while it runs."""
    tasks = index.setdefault(job_id, set())
    tasks.add(task)

    def forget(done: asyncio.Task[Any]) -> None:
        tasks.discard(done)
        if not tasks and index.get(job_id) is tasks:
            del index[job_id]

    task.add_done_callback(forget)


def public_reason(reason: str) -> str:
    """What the caller is told: token problems stay opaque (the log has the precise one)."""
    return "TOKEN_INVALID" if reason.startswith("TOKEN_") else reason
