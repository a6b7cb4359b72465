"""Job transitions: ``apply(job, command, ctx) -> Transition``, pure.

A transition returns the new job, the chain records it appends (signed receipts, token
and revocation records, the terminal record) and the effects ``bot/`` must perform
afterwards (post cards, start or halt the executor, run the rollback, build the bundle).
The records are stored in the same transaction as the new job, so nothing is witnessed
that did not happen and nothing happens unwitnessed. A refused command raises
CommandRefused and changes nothing but the job's refusal log (see :func:`refusal_note`).

The package holds the commands and effects (``commands``), the chain ledger (``ledger``),
the transitions (``approvals``, ``ending``, ``calls``) and the router (``machine``)."""

from engine.lifecycle.approvals import start
from engine.lifecycle.commands import (
    ANNOUNCE,
    ASK_APPROVERS,
    ESCALATE,
    FINISH,
    HALT_EXECUTOR,
    MAX_EXTENSIONS,
    MAX_REFUSALS_KEPT,
    NOTICE,
    PUBLISH_POLICY,
    REFRESH_EXECUTOR,
    RUN_ROLLBACK,
    START_EXECUTOR,
    UPDATE_CARDS,
    Approve,
    Command,
    Ctx,
    Deny,
    Done,
    Effect,
    Extend,
    Keys,
    Kill,
    ModelCallRecorded,
    RenewRollback,
    Request,
    RollbackFinished,
    Rules,
    StepUpFailed,
    Tick,
    ToolCallRecorded,
    Transition,
    Withdraw,
    refusal_note,
)
from engine.lifecycle.machine import apply

__all__ = [
    "ANNOUNCE",
    "ASK_APPROVERS",
    "ESCALATE",
    "FINISH",
    "HALT_EXECUTOR",
    "MAX_EXTENSIONS",
    "MAX_REFUSALS_KEPT",
    "NOTICE",
    "PUBLISH_POLICY",
    "REFRESH_EXECUTOR",
    "RUN_ROLLBACK",
    "START_EXECUTOR",
    "UPDATE_CARDS",
    "Approve",
    "Command",
    "Ctx",
    "Deny",
    "Done",
    "Effect",
    "Extend",
    "Keys",
    "Kill",
    "ModelCallRecorded",
    "RenewRollback",
    "Request",
    "RollbackFinished",
    "Rules",
    "StepUpFailed",
    "Tick",
    "ToolCallRecorded",
    "Transition",
    "Withdraw",
    "apply",
    "refusal_note",
    "start",
]
