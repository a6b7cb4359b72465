"""The job's channel in Slack, as every part of ``SlackChat`` posts there: the status card
(posted once, updated in place, posted again when deleted, left as it is when the workspace
no longer lets the bot edit it), the card's thread, and a channel that refuses the bot.

Apart from :mod:`adapters.slack.outbound` (which event posts what) because the approvers'
DMs (:mod:`adapters.slack.approver_dms`) and the job's end (:mod:`adapters.slack.job_end`)
post through the same card, thread and refusal rules. ``ChannelPosts`` holds the fields the
whole ``SlackChat`` shares; the parts are its subclasses, and ``SlackChat`` joins them.

The posts of an event in the job's channel (``_in_channel``) are kept apart from its DMs: a
channel that refuses the bot (archived, the bot removed) is said once, stops the channel's
part only, and is tried again later (``adapters.slack.refusal``), never queued for ever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.slack import refs as kinds
from adapters.slack.config import SlackConfig
from adapters.slack.refs import Posted, Refs
from adapters.slack.refusal import Refusal, requester_text, what_to_do
from adapters.slack.texts import inert, requester_user, text_message
from adapters.slack.web import EDIT_CLOSED, MESSAGE_GONE, SlackApi, SlackDeliveryError
from cards import job_views as views
from cards import slack as render
from engine.chat_ports import JobRecords
from engine.job import Job
from engine.ports import ChatEvent, MessageRefs

log = logging.getLogger("breakglass.slack")
Json = dict[str, Any]
Part = Callable[["Delivery"], Awaitable[object]]


@dataclass(frozen=True)
class Delivery:
    """One event being delivered: the job, where its card lives, and what was posted so far."""

    job: Job
    event: ChatEvent
    channel: str
    refs: Refs

    @property
    def now(self) -> datetime:
        return self.event.now


def digest(message: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(eq=False, repr=False)  # compared and shown by identity, as any service object
class ChannelPosts:
    """What ``SlackChat`` is made of (its fields), and its posts in the job's channel."""

    api: SlackApi
    message_refs: MessageRefs
    records: JobRecords
    config: SlackConfig
    names: Mapping[str, str]
    public_url: str | None = field(default=None, init=False)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)

    # ------------------------------------------------------------- the job's channel

    async def _in_channel(self, d: Delivery, part: Part) -> bool:
        """Run ``part`` (posts in the job's channel) unless the channel refuses the bot.

        A refusal is said once (an ERROR naming the job, the channel and what to do, and a
        word to the requester) and is not raised: the event's other posts go on, and nothing
        is queued. The channel is tried again at the job's first event from the refusal's
        ``retry_at`` on. True when ``part`` ran to its end."""
        refusal = Refusal.of(d.refs.get(kinds.CHANNEL_REFUSAL))
        if refusal is not None and not refusal.due(d.now):
            log.debug(
                "job %s: %s refuses the bot (%s); not tried", d.job.job_id, d.channel, refusal.code
            )
            return False
        try:
            await part(d)
        except SlackDeliveryError as exc:
            if not exc.channel_refused:
                raise
            await self._channel_refused(d, exc, refusal)
            return False
        if refusal is not None:
            log.info(
                "job %s: %s takes the bot's posts again (refused with %s since %s)",
                d.job.job_id,
                d.channel,
                refusal.code,
                refusal.since.isoformat(),
            )
            await d.refs.put(kinds.CHANNEL_REFUSAL, d.channel, "", refused=False)
        return True

    async def _channel_refused(
        self, d: Delivery, exc: SlackDeliveryError, before: Refusal | None
    ) -> None:
        """Record the refusal; the first of a run is an ERROR and a word to the requester."""
        now = d.now
        after = (
            Refusal.first(exc.code, exc.method, now)
            if before is None
            else before.again(exc.code, exc.method, now)
        )
        await d.refs.put(kinds.CHANNEL_REFUSAL, d.channel, "", **after.as_ref())
        if before is not None:
            log.debug("job %s: %s still refuses the bot (%s)", d.job.job_id, d.channel, exc.code)
            return
        log.error(
            "job %s: Slack refuses the bot's posts in %s (%s answered %s): %s",
            d.job.job_id,
            d.channel,
            exc.method,
            exc.code,
            what_to_do(exc.code, d.channel),
        )
        text = requester_text(d.job.job_id, d.channel, exc.code)
        try:
            await self._tell_requester(d, kinds.CARD_REFUSED, text)
        except SlackDeliveryError as told:  # said in the log; the requester is not told
            log.warning("job %s: could not tell the requester either (%s)", d.job.job_id, told)

    # ------------------------------------------------------------------ status card

    def _status_message(self, d: Delivery) -> Json:
        return render.moment.status(views.status_view(d.job, self.names, d.now), d.now)

    async def _card(self, d: Delivery) -> Posted:
        """The status card, posted now if it is not there yet."""
        found = d.refs.get(kinds.STATUS)
        if found is not None:
            return found
        return await self._post(d, kinds.STATUS, d.channel, self._status_message(d))

    async def _post(
        self, d: Delivery, kind: str, channel: str, message: Json, **extra: Any
    ) -> Posted:
        """Post ``message`` and record it as ``kind`` at once (a retry then repeats nothing)."""
        posted = as_posted(await self.api.post(channel, message), channel)
        await d.refs.put(kind, posted.channel, posted.ts, digest=digest(message), **extra)
        return posted

    async def _update_status(self, d: Delivery) -> Posted:
        found = d.refs.get(kinds.STATUS)
        if found is None:
            return await self._card(d)
        message = self._status_message(d)
        if found.extra.get("frozen") or found.extra.get("digest") == (new := digest(message)):
            return found
        try:
            await self.api.update(found.channel, found.ts, message)
        except SlackDeliveryError as exc:
            if exc.code in MESSAGE_GONE:  # deleted: without a card, no countdown, no Kill
                return await self._card_again(d, found, message, exc)
            if exc.code in EDIT_CLOSED:
                return await self._card_frozen(d, found, exc)
            raise
        await d.refs.put(kinds.STATUS, found.channel, found.ts, digest=new)
        return found

    async def _card_again(
        self, d: Delivery, gone: Posted, message: Json, exc: SlackDeliveryError
    ) -> Posted:
        """The card was deleted: post it again; the thread goes on under the new card."""
        log.warning(
            "job %s: its status card %s in %s is gone (Slack %s answered %s); posted again",
            d.job.job_id,
            gone.ts,
            gone.channel,
            exc.method,
            exc.code,
        )
        return await self._post(d, kinds.STATUS, gone.channel, message)

    async def _card_frozen(self, d: Delivery, card: Posted, exc: SlackDeliveryError) -> Posted:
        """The workspace no longer lets the bot edit the card: leave it, and say so once in
        its thread (its countdown stops there; the thread still tells how the job ends)."""
        log.warning(
            "job %s: its status card %s in %s can no longer be updated (Slack %s answered "
            "%s: the workspace's message editing setting); its thread carries on",
            d.job.job_id,
            card.ts,
            card.channel,
            exc.method,
            exc.code,
        )
        await d.refs.put(kinds.STATUS, card.channel, card.ts, **kept(card), frozen=True)
        text = (
            ":warning: This card can no longer be updated (Slack: "
            f"{inert(exc.code)}), so its countdown stops here. What happens to job "
            f"{inert(d.job.job_id)} is told in this thread; `/breakglass status` shows it now."
        )
        await self._thread_post(d, kinds.CARD_FROZEN, text_message(text))
        return card

    async def _thread_post(self, d: Delivery, kind: str, message: Mapping[str, Any]) -> None:
        """Post ``message`` in the card's thread once (``kind`` remembers that it went out)."""
        if d.refs.has(kind):
            return
        card = await self._card(d)
        body = await self.api.post(card.channel, message, thread_ts=card.ts)
        await d.refs.put(kind, card.channel, as_posted(body, card.channel).ts)

    async def _tell(self, d: Delivery, kind: str, text: str) -> None:
        """Say ``text`` once in the card's thread, or to the requester when the channel
        refuses the bot."""

        async def in_thread(d: Delivery) -> None:
            await self._thread_post(d, kind, text_message(text))

        if not await self._in_channel(d, in_thread):
            await self._tell_requester(d, kind, text)

    async def _tell_requester(self, d: Delivery, kind: str, text: str) -> None:
        """Tell the requester alone, once: ephemerally in the channel, else in a DM (a bot
        that is not in the channel cannot post there, not even ephemerally)."""
        user = requester_user(d.job)
        if user is None or d.refs.has(kind):
            return
        try:
            answer = await self.api.ephemeral(d.channel, user, text)
            where, ts = d.channel, str(answer.get("message_ts", ""))
        except SlackDeliveryError as exc:
            if not (exc.recipient_gone or exc.channel_refused):
                raise
            where = await self.api.open_dm(user)
            ts = as_posted(await self.api.post(where, text_message(text)), where).ts
        await d.refs.put(kind, where, ts)


def kept(posted: Posted) -> dict[str, Any]:
    """What a ref records about a post besides where it is (to write it again, amended)."""
    return {k: v for k, v in posted.extra.items() if k not in ("channel", "ts")}


def as_posted(body: Mapping[str, Any], channel: str) -> Posted:
    ts = body.get("ts")
    if not isinstance(ts, str):
        raise SlackDeliveryError("chat.postMessage", "no_ts_in_answer")
    where = body.get("channel")
    return Posted(where if isinstance(where, str) else channel, ts, {})
