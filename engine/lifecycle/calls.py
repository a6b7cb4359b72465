"""Receipts for the tool and model calls the gateway and the model proxy report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine import chain
from engine.bundle import executor_stop_record
from engine.containment import (
    AGENT_CALL_LIMIT,
    MAX_DERIVED_CREDENTIALS,
    after_sweep,
    credential_mark,
    derived_record,
    is_unrecorded_step,
    settles_mark,
)
from engine.errors import InputError
from engine.job import (
    ACTIVE,
    END_UNEXPECTED_TARGET,
    Job,
    Token,
)
from engine.lifecycle.commands import (
    UPDATE_CARDS,
    Ctx,
    Effect,
    ExecutorStopped,
    ModelCallRecorded,
    ToolCallRecorded,
    Transition,
    WriteSending,
    refuse,
)
from engine.lifecycle.ending import begin_end
from engine.lifecycle.ledger import Ledger, binding_for
from engine.receipts import (
    TOOL_RECEIPT,
    Span,
    span_id_for,
    tool_receipt_payload,
)
from engine.timeutil import iso_seconds_up, parse_iso
from engine.tools import GRANT_ENDS_AT


def tool_call(job: Job, command: ToolCallRecorded, ctx: Ctx) -> Transition:
    """Receipt a tool call (allowed or refused); a target outside the WPC kills the job."""
    if job.resolved:
        raise refuse("ALREADY_RESOLVED", "the job has ended; its chain is closed")
    if command.role == "refused" and job.tool_receipts > AGENT_CALL_LIMIT:
        # A flood of refused calls (a looping agent, or one still calling after a Kill):
        # the first past the limit is in the chain, the rest only in the log, so the
        # bundle stays within the receipts it may hold and the rollback keeps its room.
        raise refuse("RECEIPT_LIMIT", f"more than {AGENT_CALL_LIMIT} agent calls receipted")
    token = _token_with_scope(job, command.token_scope_hash)
    ledger = Ledger(job, ctx.now)
    payload = tool_receipt_payload(
        receipt_id=command.receipt_id,
        tool_name=command.tool_name[:200] or "(none)",
        arguments=command.arguments,
        result=command.result,
        status=command.status,
        agent_did=ctx.keys.agent.did,
        at=command.started_at or ctx.now,
        latency_ms=command.latency_ms,
    )
    ledger.add_receipt(
        chain.TOOL_CALL, TOOL_RECEIPT, payload, binding_for(job, token), ctx.keys.gateway
    )
    changes: dict[str, Any] = {
        "last_tool_call": f"{command.tool_name[:80]}: {command.status}",
        "tool_receipts": job.tool_receipts + 1,
    }
    derived = command.status == "success" and derived_record(
        command.receipt_id, command.tool_name, command.arguments, command.result
    )
    changes |= _credentials(job, command, derived or None, ctx)
    if not derived and is_planned_write(job, command.tool_name, command.role):
        changes["write_done"] = job.write_done or command.status == "success"
        # Only a write refused before it left us (bad arguments) is known not to have landed.
        changes["write_sent"] = job.write_sent or command.result.get("sent") is not False
        changes["write_in_flight"] = False  # its receipt is in
        changes["grant_ends_at"] = _grant_ends_at(job, command)
    # A cancelled or failed read learned nothing: it never overwrites what one did learn.
    learned = command.verified is not None and job.write_done
    if learned and _is_planned_read(job, command, "verify_action"):
        changes["verified_after_write"] = command.verified
    ledger.job = ledger.job.but(**changes)
    if command.kill_trigger == END_UNEXPECTED_TARGET and ledger.job.state == ACTIVE:
        return begin_end(ledger, END_UNEXPECTED_TARGET, "gateway", ctx)
    return ledger.finish(
        [Effect(UPDATE_CARDS)], {"state": ledger.job.state, "receipt_id": command.receipt_id}
    )


def _grant_ends_at(job: Job, command: ToolCallRecorded) -> str | None:
    """When the tenant ends the planned writes' grants by itself at the latest: what a
    successful write's result says (the later of it and an earlier write's). Unknown (None)
    once a write that may have landed said nothing, so nothing is claimed of its grant."""
    if command.result.get("sent") is False:
        return job.grant_ends_at  # it never left us
    said = command.result.get(GRANT_ENDS_AT) if command.status == "success" else None
    try:
        end = parse_iso(said)
    except InputError:
        return None
    ends_at = iso_seconds_up(end)
    if not job.write_sent:
        return ends_at
    earlier = job.grant_ends_at
    return max(earlier, ends_at) if earlier is not None else None


def write_sending(job: Job, command: WriteSending, ctx: Ctx) -> Transition:
    """Mark a write as in flight (no chain event: its receipt follows): the planned write,
    or a credential write (see :class:`WriteSending`). Only an active job may send it; a job
    that ended meanwhile sends nothing. A credential write is refused past the job's limit,
    counting those in doubt (durable, so calls through several replicas count too)."""
    if job.state != ACTIVE:
        raise refuse("NOT_ACTIVE", f"the job is {job.state}")
    ledger = Ledger(job, ctx.now)
    if not command.tool or is_planned_write(job, command.tool, "write"):
        ledger.job = job.but(write_in_flight=True)
    else:
        ledger.job = job.but(credentials_in_flight=_marked(job, command))
    return ledger.finish()


def _marked(job: Job, command: WriteSending) -> tuple[Mapping[str, str], ...]:
    """The job's credential writes in doubt, with this one (once: a repeat changes nothing)."""
    mark = credential_mark(command.receipt_id, command.tool, command.arguments)
    if mark is None:
        raise refuse("NOT_A_CREDENTIAL_WRITE", f"{command.tool[:80]} with no receipt id")
    marks = job.credentials_in_flight
    if any(m.get("receipt_id") == command.receipt_id for m in marks):
        return marks
    if len(job.derived_rollback) + len(marks) >= MAX_DERIVED_CREDENTIALS:
        raise refuse("CREDENTIAL_LIMIT", f"at most {MAX_DERIVED_CREDENTIALS} credentials per job")
    return (*marks, mark)


def _credentials(
    job: Job, command: ToolCallRecorded, derived: Mapping[str, Any] | None, ctx: Ctx
) -> dict[str, Any]:
    """What a receipt changes of the job's credentials: a credential the window created
    derives its removal (``engine.containment``); a credential write's own receipt, or the
    rollback's removal of every password the job marked, may settle writes in doubt."""
    changes: dict[str, Any] = {}
    if derived is not None:
        changes["derived_rollback"] = (*job.derived_rollback, derived)
    marks = job.credentials_in_flight
    if _settles(job, command, derived is not None):  # what became of the write is known
        kept = (mark for mark in marks if mark.get("receipt_id") != command.receipt_id)
        changes["credentials_in_flight"] = tuple(kept)
    elif _swept(job, command):  # what the writes in doubt may have created is removed
        settled = _replication_settled(job, command, ctx)
        args, result = command.arguments, command.result
        swept = after_sweep(marks, job.derived_rollback, args, result, settled)
        changes["credentials_in_flight"] = swept
    return changes


def _swept(job: Job, command: ToolCallRecorded) -> bool:
    """Is this the rollback's successful removal of every password the job marked on an
    application (``engine.containment.unrecorded_steps``), with writes in doubt left?"""
    return (
        bool(job.credentials_in_flight)
        and command.role == "rollback"
        and command.status == "success"
        and is_unrecorded_step(command.tool_name, command.arguments)
    )


def _replication_settled(job: Job, command: ToolCallRecorded, ctx: Ctx) -> bool:
    """Did the call begin at least the settle time after the window's end (ADR 0013)? Every
    write of the job was sent before that end, so a read then would show what landed."""
    if job.ended_at is None:
        return False
    began = command.started_at or ctx.now
    return began >= job.replication_settled_at(ctx.rules.replication_settle)


def _settles(job: Job, command: ToolCallRecorded, derived: bool) -> bool:
    """Is this the receipt of a credential write in doubt, and does it say what became of
    it (``engine.containment.settles_mark``)?"""
    marked = any(m.get("receipt_id") == command.receipt_id for m in job.credentials_in_flight)
    return marked and settles_mark(command.status, command.result, derived)


def _token_with_scope(job: Job, scope_hash: str | None) -> Token | None:
    """The job's token a receipt binds to (None for a refusal that presented no known token)."""
    return next((t for t in job.tokens if t.claims["token_scope_hash_b64u"] == scope_hash), None)


def _is_planned_read(job: Job, command: ToolCallRecorded, which: str) -> bool:
    """Is this the WPC's planned verification read (same tool, same arguments)?"""
    planned = _planned(job, which)
    return (
        command.role == "read"
        and command.tool_name == planned["tool"]
        and dict(command.arguments) == dict(planned["arguments"])
    )


def is_planned_write(job: Job, tool_name: str, role: str) -> bool:
    """Is this call the job's planned write (the WPC's action, by a write tool)?"""
    return role == "write" and tool_name == _planned(job, "action")["tool"]


def _planned(job: Job, which: str) -> Any:
    return job.plan.payload["metadata"]["breakglass"][which]


def model_call(job: Job, command: ModelCallRecorded, ctx: Ctx) -> Transition:
    if job.resolved:
        raise refuse("ALREADY_RESOLVED", "the job has ended; its chain is closed")
    token = _token_with_scope(job, command.token_scope_hash)
    ledger = Ledger(job, ctx.now)
    span, spans = _next_span(job, command.payload)
    binding = replace(binding_for(job, token), span=span)
    envelope = ledger.add_receipt(
        chain.LLM_CALL, "gateway_receipt", command.payload, binding, ctx.keys.gateway
    )
    ledger.job = ledger.job.but(model_spans=spans)
    result = {"state": job.state, "receipt_id": command.payload["receipt_id"], "envelope": envelope}
    return ledger.finish([], result)


def executor_stopped(job: Job, command: ExecutorStopped, ctx: Ctx) -> Transition:
    """Receipt the end of an executor run (the router refuses it once the chain is closed)."""
    if command.reason not in ("halted", "exited"):
        raise refuse("INVALID_REASON", f"not an executor stop: {command.reason[:40]}")
    stop = {
        "reason": command.reason,
        "exit_code": command.exit_code,
        "signal": command.signal,
        "status": command.status[:40],
        "tool_calls": command.tool_calls,
        "failures": command.failures,
    }
    ledger = Ledger(job, ctx.now)
    record = executor_stop_record(run_id=job.job_id, stop=stop, signer=ctx.keys.agent, at=ctx.now)
    ledger.add(chain.EXECUTOR_STOP, record["payload_hash_b64u"], record)
    return ledger.finish([Effect(UPDATE_CARDS)], {"state": job.state, "stop": stop})


def _next_span(job: Job, payload: Mapping[str, Any]) -> tuple[Span, dict[str, str]]:
    """The span a model call declares, and the job's spans after it. A call follows the
    latest earlier call (the conversation goes on); the reference's clock rule wants a
    span no earlier than its parent, so a call that overlapped it hangs off the root."""
    at = str(payload["timestamp"])
    span_id = span_id_for(str(payload["receipt_id"]))
    spans = dict(job.model_spans)
    parent = next(
        (
            spans[name]
            for name in ("last", "root")
            if name in spans and parse_iso(spans[f"{name}_at"]) <= parse_iso(at)
        ),
        None,
    )
    if "root" not in spans:
        spans |= {"root": span_id, "root_at": at}
    spans |= {"last": span_id, "last_at": at}
    return Span(span_id, parent), spans
