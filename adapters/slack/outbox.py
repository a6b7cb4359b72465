"""Deliver what Slack missed: drain the store's outbox for platform ``slack``.

The service queued each failed delivery as ``{kind, detail, seqs, at}``; here the event is
rebuilt from the store as it is now (the job, its chain records, its bundle) and delivered
again. Posts already made are skipped (message refs), so a retry repeats nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from adapters.retry import Backoff, outbox_delay
from adapters.slack.web import SlackDeliveryError
from engine.chat_ports import ChatPorts
from engine.errors import BreakGlassError, JobNotFound, describe
from engine.ports import ChainRecord, ChatEvent, ChatPort, OutboxItem

log = logging.getLogger("breakglass.slack")
PLATFORM = "slack"
BATCH = 50
LEASE = timedelta(minutes=2)  # another replica skips items we are delivering
# 5 s, 10 s, 20 s … capped at 10 min; never sooner than Slack's ``Retry-After``.
BACKOFF = Backoff(base_delay=5.0, max_delay=600.0, jitter=False)


def records_by_seq(records: Sequence[ChainRecord], seqs: object) -> list[ChainRecord]:
    wanted = {s for s in seqs if isinstance(s, int)} if isinstance(seqs, list) else set()
    return [r for r in records if r.seq in wanted]


async def rebuild(ports: ChatPorts, item: OutboxItem, now: datetime) -> ChatEvent:
    """The queued event as it should be shown now."""
    job = await ports.jobs.load(item.job_id)
    payload: Any = item.payload
    kind = str(payload.get("kind", ""))
    records = records_by_seq(await ports.records.chain(item.job_id), payload.get("seqs"))
    bundle = await ports.records.bundle(job) if kind == "finish" and job.resolved else None
    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
    return ChatEvent(kind, job.to_json(), detail, records, now, bundle)


async def drain(ports: ChatPorts, port: ChatPort, now: datetime) -> int:
    """Deliver every due item (oldest first); returns how many went out.

    After a failure the job's later items wait as long, so a thread never shows them out of
    order and Slack's ``Retry-After`` holds for all of them. When Slack refuses the bot token
    itself, every item waits: one call a round finds out whether it works again.
    """
    delivered = 0
    stalled: dict[str, datetime] = {}  # job id → when its items are tried again
    halted: datetime | None = None  # the token is refused: when every item is tried again
    for item in await ports.store.due(PLATFORM, now, BATCH, lease_until=now + LEASE):
        wait = halted or stalled.get(item.job_id)
        if wait is not None:
            await ports.store.postpone(item.item_id, wait)
            continue
        failed = await _deliver_one(ports, port, item, now)
        if failed is None:
            delivered += 1
            continue
        retry_at, token_refused = failed
        stalled[item.job_id] = retry_at
        if token_refused:
            halted = retry_at
    return delivered


async def _deliver_one(
    ports: ChatPorts, port: ChatPort, item: OutboxItem, now: datetime
) -> tuple[datetime, bool] | None:
    """Deliver one item; None when done (or dropped), else when to try again and whether the
    bot token was refused."""
    try:
        await port.deliver(await rebuild(ports, item, now))
    except JobNotFound:
        log.warning("outbox item %s names unknown job %s; dropped", item.item_id, item.job_id)
    except Exception as exc:  # any failure: keep the item, try again later
        retry_at = now + outbox_delay(BACKOFF, item.attempts, getattr(exc, "retry_after", None))
        token_refused = isinstance(exc, SlackDeliveryError) and exc.auth_failed
        quiet = isinstance(exc, BreakGlassError)
        log.log(
            # A refused token was said once, at ERROR, with what to do (``web.SlackApi``).
            logging.DEBUG if token_refused else logging.WARNING,
            "outbox item %s of %s not delivered (%s); again at %s",
            item.item_id,
            item.job_id,
            describe(exc),
            retry_at.isoformat(),
            exc_info=not quiet,
        )
        await ports.store.postpone(item.item_id, retry_at)
        return retry_at, token_refused
    await ports.store.delivered(item.item_id)
    return None
