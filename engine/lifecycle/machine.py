"""The entry point: route a command to its transition."""

from __future__ import annotations

from engine.job import (
    Job,
)
from engine.lifecycle.approvals import approve, deny, extend, withdraw
from engine.lifecycle.calls import model_call, tool_call
from engine.lifecycle.commands import (
    Approve,
    Command,
    Ctx,
    Deny,
    Done,
    ExecutorFailed,
    Extend,
    Kill,
    ModelCallRecorded,
    RemovalDelayed,
    RenewRollback,
    RollbackFinished,
    Tick,
    ToolCallRecorded,
    Transition,
    Withdraw,
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


def apply(job: Job, command: Command, ctx: Ctx) -> Transition:
    """Apply ``command`` to ``job`` at ``ctx.now``. Raises CommandRefused when not allowed."""
    if isinstance(command, ToolCallRecorded):
        return tool_call(job, command, ctx)
    if isinstance(command, ModelCallRecorded):
        return model_call(job, command, ctx)
    if job.resolved:
        raise refuse("ALREADY_RESOLVED", f"the job ended {job.state}")
    if isinstance(command, Approve):
        return approve(job, command, ctx)
    if isinstance(command, Deny):
        return deny(job, command, ctx)
    if isinstance(command, Withdraw):
        return withdraw(job, command, ctx)
    if isinstance(command, Kill):
        return kill(job, command, ctx)
    if isinstance(command, Done):
        return done(job, command, ctx)
    if isinstance(command, Extend):
        return extend(job, command, ctx)
    if isinstance(command, Tick):
        return tick(job, ctx)
    if isinstance(command, RollbackFinished):
        return rollback_finished(job, command, ctx)
    if isinstance(command, RenewRollback):
        return renew_rollback(job, ctx)
    if isinstance(command, ExecutorFailed):
        return executor_failed(job, command, ctx)
    if isinstance(command, RemovalDelayed):
        return removal_delayed(job, command, ctx)
    raise refuse("UNKNOWN_COMMAND", type(command).__name__)
