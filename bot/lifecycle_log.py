"""One log line per lifecycle event of a job (request, approval, activation, tool call,
kill, rollback, close), each carrying the job id: the chain's records as they are made.

A ``PacedChat`` that logs every event the moment the service publishes it (before chat
pacing holds receipts back), so the service itself needs no logging calls for them.
"""

from __future__ import annotations

import logging

from bot.notifier import PacedChat
from engine.ports import ChatEvent

log = logging.getLogger("breakglass.lifecycle")


class LoggingPacedChat(PacedChat):
    async def publish(self, job_id: str, events: list[ChatEvent]) -> None:
        for event in events:
            log_event(job_id, event)
        await super().publish(job_id, events)

    def hold_now(self, job_id: str, events: list[ChatEvent]) -> bool:
        held = super().hold_now(job_id, events)
        if held:
            for event in events:
                log_event(job_id, event)
        return held


def log_event(job_id: str, event: ChatEvent) -> None:
    for record in event.records:
        kind = str(record.event.get("event_type", "event"))
        extra = {"job_id": job_id, "event": kind, "seq": record.seq}
        log.info("job %s: %s", job_id, kind, extra=extra)
    if event.kind == "finish":
        state = str(event.job.get("state", ""))
        log.info("job %s: closed (%s)", job_id, state, extra={"job_id": job_id, "state": state})
