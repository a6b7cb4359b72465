"""The entry point: route a command to its transition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.job import Job
from engine.lifecycle.approvals import approve, deny, step_up_failed, withdraw
from engine.lifecycle.calls import executor_stopped, model_call, tool_call, write_sending
from engine.lifecycle.commands import (
    Approve,
    Command,
    Ctx,
    Deny,
    Done,
    ExecutorFailed,
    ExecutorStopped,
    Extend,
    Kill,
    ModelCallRecorded,
    RemovalDelayed,
    RenewRollback,
    RollbackFinished,
    StepUpFailed,
    Tick,
    ToolCallRecorded,
    Transition,
    Withdraw,
    WriteSending,
    refuse,
)
from engine.lifecycle.ending import (
    done,
    executor_failed,
    kill,
    removal_delayed,
    renew_rollback,
    rollback_finished,
    tick,
)
from engine.lifecycle.proposals import extend

Handler = Callable[[Job, Any, Ctx], Transition]

# Receipts of calls are recorded in any state (a refusal after the end is still witnessed).
_ANY_STATE: dict[type, Handler] = {ToolCallRecorded: tool_call, ModelCallRecorded: model_call}
_OPEN_JOB: dict[type, Handler] = {
    Approve: approve,
    StepUpFailed: step_up_failed,
    Deny: deny,
    Withdraw: withdraw,
    Kill: kill,
    Done: done,
    Extend: extend,
    Tick: lambda job, _command, ctx: tick(job, ctx),
    RollbackFinished: rollback_finished,
    RenewRollback: lambda job, _command, ctx: renew_rollback(job, ctx),
    ExecutorFailed: executor_failed,
    RemovalDelayed: removal_delayed,
    ExecutorStopped: executor_stopped,
    WriteSending: write_sending,
}


def apply(job: Job, command: Command, ctx: Ctx) -> Transition:
    """Apply ``command`` to ``job`` at ``ctx.now``. Raises CommandRefused when not allowed."""
    handler = _ANY_STATE.get(type(command))
    if handler is None:
        if job.resolved:
            raise refuse("ALREADY_RESOLVED", f"the job ended {job.state}")
        handler = _OPEN_JOB.get(type(command))
    if handler is None:
        raise refuse("UNKNOWN_COMMAND", type(command).__name__)
    return handler(job, command, ctx)
