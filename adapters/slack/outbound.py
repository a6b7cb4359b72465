"""``SlackChat``: the service's chat effects, shown in Slack (the ChatPort of platform slack).

The status card is posted to the incident channel once and updated in place; its ts is the
thread every receipt, warning, result and bundle goes to. Approvers are asked in a DM, and
their DMs turn into the result (buttons gone) once the plan is decided. Every post is
recorded as a message ref first thing after it succeeds, so a delivery retried from the
outbox repeats nothing and a failure raises ``ChatError`` (the service queues the event).

Slack has no idempotent post: when the answer to a chat.postMessage is lost, the retry posts
again, and the copy left behind keeps buttons that a press on it cannot use (the binding
check refuses a click on a message the bot did not record). docs/slack.md says so.

This module routes each event to what it posts, and holds the posts of the job's running
(receipts, announcements, the countdown). The rest is in its parts: the card, its thread and
a channel that refuses the bot (:mod:`adapters.slack.channel_posts`), the approvers' DMs
(:mod:`adapters.slack.approver_dms`) and the job's end (:mod:`adapters.slack.job_end`).
"""

from __future__ import annotations

import asyncio
import logging

from adapters.slack import refs as kinds
from adapters.slack.approver_dms import ApproverDms
from adapters.slack.channel_posts import Delivery, Part, as_posted
from adapters.slack.job_end import JobEnd
from adapters.slack.refs import Refs
from adapters.slack.texts import text_message, warning_text
from adapters.slack.web import SlackDeliveryError
from cards import job_views as views
from cards import slack as render
from engine.job import Job
from engine.ports import ChatEvent

log = logging.getLogger("breakglass.slack")
# Events shown only in the job's channel (the card and its thread); "update_cards" is the card
# there and the approvers' DMs, "ask_approvers" the DMs, "escalate" the channel or else the
# requester's DM.
CHANNEL_KINDS = frozenset({"receipts", "countdown_notice", "finish", "announce"})


class SlackChat(ApproverDms, JobEnd):
    """The parts joined: built as ``ChannelPosts`` is (its fields are all of them)."""

    platform = "slack"

    async def deliver(self, event: ChatEvent) -> None:
        job = Job.from_json(event.job)
        channel = job.channel.get("channel")
        if not isinstance(channel, str):
            log.warning("job %s names no Slack channel; nothing posted", job.job_id)
            return
        try:
            async with asyncio.timeout(self.config.deliver_budget):
                await self._deliver(job, event, channel)
        except TimeoutError as exc:  # what went out is recorded; the outbox does the rest
            raise SlackDeliveryError(event.kind, "delivery_budget_exceeded") from exc

    async def _deliver(self, job: Job, event: ChatEvent, channel: str) -> None:
        # One delivery per job at a time: the outbox and live effects never race to post.
        async with self._locks.setdefault(job.job_id, asyncio.Lock()):
            refs = await Refs.load(self.message_refs, job.job_id)
            await self._dispatch(Delivery(job, event, channel, refs))

    async def _dispatch(self, d: Delivery) -> None:
        handlers: dict[str, Part] = {
            "receipts": self._receipts,
            "ask_approvers": self._ask,
            "update_cards": self._update_cards,
            "countdown_notice": self._notice,
            "finish": self._finish,
            "escalate": self._escalate,
            "announce": self._announce,  # decisions show on the cards; failures and delays here
        }
        handler = handlers.get(d.event.kind)
        if handler is None:
            return
        if d.event.kind in CHANNEL_KINDS:
            await self._in_channel(d, handler)
        else:
            await handler(d)

    # -------------------------------------------------------------------- receipts

    async def _receipts(self, d: Delivery) -> None:
        """All records of the event not posted yet, as ONE thread message: posts per job
        are bounded by the service's pacing of receipts events, not by the chain's length."""
        card = await self._card(d)
        posted = kinds.receipted(d.refs)
        new = sorted((r for r in d.event.records if r.seq not in posted), key=lambda r: r.seq)
        if not new:
            return
        message = render.receipts_message([views.receipt_line(r) for r in new])
        body = await self.api.post(card.channel, message, thread_ts=card.ts)
        ts = as_posted(body, card.channel).ts
        await d.refs.put(
            kinds.receipt_kind(new[0].seq), card.channel, ts, seqs=[r.seq for r in new]
        )

    async def _announce(self, d: Delivery) -> None:
        view = views.announcement_view(d.job, self.names, d.event.detail)
        if view is not None:
            message = render.moment.announcement(view)
            await self._thread_post(d, views.announcement_key(d.event.detail), message)

    # ----------------------------------------------------------------------- cards

    async def _update_cards(self, d: Delivery) -> None:
        await self._in_channel(d, self._update_status)
        for kind in d.refs.kinds("approval:"):
            await self._update_dm(d, kind)

    # ------------------------------------------------------------------- countdown

    async def _notice(self, d: Delivery) -> None:
        await self._update_status(d)
        if d.event.detail.get("warning"):
            minutes = int(d.event.detail.get("minutes_left", 0))
            await self._thread_post(d, kinds.WARNING, text_message(warning_text(d.job, minutes)))
