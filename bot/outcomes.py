"""Outcomes of the service's commands that say more than the transition's result: a
request refused before anything was stored, and a transition that ended the job by a rule
instead of doing what was asked. Both are logged and counted like any refusal."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot import metrics
from engine import lifecycle
from engine.errors import CommandRefused
from engine.outcome import Outcome

log = logging.getLogger("breakglass.service")


def refused_request(command: lifecycle.Request, err: CommandRefused) -> Outcome:
    log.info(
        "refused request by %s: %s",
        command.actor.chat_identity,
        err.reason,
        extra={"job_id": command.job_id, "reason": err.reason},
    )
    return Outcome(False, command.job_id, reason=err.reason, detail=err.detail)


def outcome_of(job_id: str, result: Mapping[str, Any]) -> Outcome:
    """A transition that ends the job by a rule instead of doing what was asked (the last
    approval of a grant another job holds) answers as a refusal, with what it did."""
    refused = result.get("refused")
    if refused is None:
        return Outcome(True, job_id, result)
    log.info("%s on %s: %s", refused, job_id, result.get("detail", ""))
    metrics.COMMAND_REFUSALS.labels(str(refused)).inc()
    return Outcome(False, job_id, result, reason=str(refused), detail=str(result.get("detail")))
