"""One log line per lifecycle event of a job (request, approval, activation, tool call,
kill, rollback, close), each carrying the job id: the chain's records as they are published.

A ``Notifier`` that logs before it fans out, so every platform's events are seen once and
the service itself needs no logging calls of its own for them.
"""

from __future__ import annotations

import logging

from bot.service import Notifier
from engine.ports import ChatEvent

log = logging.getLogger("breakglass.lifecycle")


class LoggingNotifier(Notifier):
    async def publish(self, event: ChatEvent) -> None:
        job_id = str(event.job.get("job_id", ""))
        for record in event.records:
            kind = str(record.event.get("event_type", "event"))
            log.info(
                "job %s: %s",
                job_id,
                kind,
                extra={"job_id": job_id, "event": kind, "seq": record.seq},
            )
        if event.kind == "finish":
            state = str(event.job.get("state", ""))
            log.info("job %s: closed (%s)", job_id, state, extra={"job_id": job_id, "state": state})
        await super().publish(event)
