"""``SlackChat``: the service's chat effects, shown in Slack (the ChatPort of platform slack).

The status card is posted to the incident channel once and updated in place; its ts is the
thread every receipt, warning, result and bundle goes to. Approvers are asked in a DM, and
their DMs turn into the result (buttons gone) once the plan is decided. Every post is
recorded as a message ref first thing after it succeeds, so a delivery retried from the
outbox repeats nothing and a failure raises ``ChatError`` (the service queues the event).

Slack has no idempotent post: when the answer to a chat.postMessage is lost, the retry posts
again, and the copy left behind keeps buttons that a press on it cannot use (the binding
check refuses a click on a message the bot did not record). docs/slack.md says so.

The posts of an event in the job's channel (``_in_channel``) are kept apart from its DMs: a
channel that refuses the bot (archived, the bot removed) is said once, stops the channel's
part only, and is tried again later (``adapters.slack.refusal``), never queued for ever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.slack import refs as kinds
from adapters.slack.config import SlackConfig
from adapters.slack.refs import Posted, Refs
from adapters.slack.refusal import Refusal, requester_text, what_to_do
from adapters.slack.texts import (
    escalation_text,
    inert,
    inline_bundle,
    requester_mention,
    requester_user,
    text_message,
    warning_text,
)
from adapters.slack.web import (
    EDIT_CLOSED,
    FILES_REFUSED,
    MESSAGE_GONE,
    SlackApi,
    SlackDeliveryError,
)
from cards import job_views as views
from cards import slack as render
from cards.moments import VERIFY_COMMAND as VERIFY
from engine.canonical import jcs
from engine.chat_ports import JobRecords
from engine.job import ACTIVE, PENDING, Job
from engine.ports import ChatEvent, MessageRefs
from engine.timeutil import parse_iso

log = logging.getLogger("breakglass.slack")
Json = dict[str, Any]
Part = Callable[["Delivery"], Awaitable[object]]
# Events shown only in the job's channel (the card and its thread); "update_cards" is the card
# there and the approvers' DMs, "ask_approvers" the DMs, "escalate" the channel or else the
# requester's DM.
CHANNEL_KINDS = frozenset({"receipts", "countdown_notice", "finish", "announce"})


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
class SlackChat:
    platform = "slack"

    api: SlackApi
    message_refs: MessageRefs
    records: JobRecords
    config: SlackConfig
    names: Mapping[str, str]
    public_url: str | None = field(default=None, init=False)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)

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
        posted = _posted(await self.api.post(channel, message), channel)
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
        await d.refs.put(kinds.STATUS, card.channel, card.ts, **_kept(card), frozen=True)
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
        await d.refs.put(kind, card.channel, _posted(body, card.channel).ts)

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
        ts = _posted(body, card.channel).ts
        await d.refs.put(
            kinds.receipt_kind(new[0].seq), card.channel, ts, seqs=[r.seq for r in new]
        )

    async def _announce(self, d: Delivery) -> None:
        view = views.announcement_view(d.job, self.names, d.event.detail)
        if view is not None:
            message = render.moment.announcement(view)
            await self._thread_post(d, views.announcement_key(d.event.detail), message)

    # ------------------------------------------------------------------- approvals

    async def _ask(self, d: Delivery) -> None:
        """Ask every approver at once, each on their own: one failing holds back no other.

        An approver Slack will never reach is given up for this revision and the requester
        told; any other failure is raised once the rest went out, so the outbox tries again
        (and skips the prompts that went out)."""
        revision = int(d.event.detail.get("revision", 0))
        if not awaiting(d.job, revision):
            return  # delivered late (from the outbox): the plan is already decided
        principal_of = {
            user: str(principal)
            for principal in d.event.detail.get("principals", ())
            for user in self.config.slack_users_of(str(principal))
        }
        users = [u for u in principal_of if not d.refs.has(kinds.unreachable_kind(u, revision))]
        outcomes = await asyncio.gather(
            *(self._ask_one(d, user, revision) for user in users), return_exceptions=True
        )
        retry: BaseException | None = None
        for user, outcome in zip(users, outcomes, strict=True):
            if isinstance(outcome, SlackDeliveryError) and outcome.recipient_gone:
                await self._unreachable(d, user, principal_of[user], revision, outcome)
            elif isinstance(outcome, BaseException):
                retry = retry or outcome
        if retry is not None:
            raise retry

    async def _ask_one(self, d: Delivery, user: str, revision: int) -> None:
        kind = kinds.approval_kind(user)
        found = d.refs.get(kind)
        if found is not None and found.extra.get("revision") == revision:
            return
        dm = await self.api.open_dm(user)
        await self._post(d, kind, dm, self._prompt(d), revision=revision)

    def _prompt(self, d: Delivery) -> Json:
        return render.approval_message(views.approval_view(d.job, self.names, d.now))

    async def _unreachable(
        self, d: Delivery, user: str, principal: str, revision: int, exc: SlackDeliveryError
    ) -> None:
        """Stop asking ``user`` on this revision, and tell the requester why, once."""
        kind = kinds.unreachable_kind(user, revision)
        if d.refs.has(kind):
            return
        log.warning(
            "approver %s (Slack user %s) of job %s not asked: Slack %s answered %s",
            principal,
            user,
            d.job.job_id,
            exc.method,
            exc.code,
        )
        name = inert(self.names.get(principal, principal))
        text = (
            f":warning: {requester_mention(d.job)}Could not reach approver {name} in Slack: "
            f"{inert(exc.code)}. Ask them another way, or ask another approver."
        )
        await self._tell(d, kind, text)

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
            ts = _posted(await self.api.post(where, text_message(text)), where).ts
        await d.refs.put(kind, where, ts)

    async def _update_cards(self, d: Delivery) -> None:
        await self._in_channel(d, self._update_status)
        for kind in d.refs.kinds("approval:"):
            await self._update_dm(d, kind)

    async def _update_dm(self, d: Delivery, kind: str) -> None:
        found = d.refs.get(kind)
        if found is None or found.extra.get("closed"):
            return
        revision = found.extra.get("revision")
        still_open = isinstance(revision, int) and awaiting(d.job, revision)
        message = self._prompt(d) if still_open else self._decided_message(d, revision)
        new = digest(message)
        if still_open and found.extra.get("digest") == new:
            return
        try:
            await self.api.update(found.channel, found.ts, message)
        except SlackDeliveryError as exc:
            if exc.code not in MESSAGE_GONE | EDIT_CLOSED:
                raise
            # Deleted or frozen: this DM is left as it is (the card and thread tell the rest).
            log.warning(
                "job %s: the approval prompt %s in %s is not updated (Slack %s answered %s)",
                d.job.job_id,
                found.ts,
                found.channel,
                exc.method,
                exc.code,
            )
            await d.refs.put(kind, found.channel, found.ts, **{**_kept(found), "closed": True})
            return
        extra = {"revision": revision, "digest": new, "closed": not still_open}
        await d.refs.put(kind, found.channel, found.ts, **extra)

    def _decided_message(self, d: Delivery, revision: object) -> Json:
        """What a DM shows once its plan is decided: the decision, or the job's state."""
        job, plan = d.job, d.job.plan
        if plan.revision != revision:
            return self._status_message(d)  # an extension that was refused or dropped
        denials = [x for x in plan.decisions if x.decision == "deny"]
        approvals = [x for x in plan.decisions if x.decision == "approve"]
        if denials:
            last, decision = denials[-1], "deny"
        elif job.window_start and approvals:
            last, decision = approvals[-1], "approve"
        else:
            return self._status_message(d)  # expired or killed before it was decided
        view = views.approval_result_view(
            job, self.names, decision, last.principal, parse_iso(last.at)
        )
        return render.moment.approval_result(view)

    # ------------------------------------------------------------------- countdown

    async def _notice(self, d: Delivery) -> None:
        await self._update_status(d)
        if d.event.detail.get("warning"):
            minutes = int(d.event.detail.get("minutes_left", 0))
            await self._thread_post(d, kinds.WARNING, text_message(warning_text(d.job, minutes)))

    # ---------------------------------------------------------------------- ending

    async def _finish(self, d: Delivery) -> None:
        await self._update_status(d)
        records = await self.records.chain(d.job.job_id)
        if d.job.window_start is not None:  # a window was open: say what was undone
            view = views.kill_result_view(d.job, records, self.names)
            await self._thread_post(d, kinds.FINISH_KILL, render.moment.kill_result(view))
        bundle = d.event.bundle
        bundle_hash = str(bundle["payload_hash_b64u"]) if bundle else "(not built)"
        summary = views.audit_summary_view(d.job, records, self.names, bundle_hash, self.public_url)
        await self._thread_post(d, kinds.FINISH_AUDIT, render.moment.audit_summary(summary))
        if bundle is not None:
            await self._bundle(d, bundle)

    async def _bundle(self, d: Delivery, bundle: Mapping[str, Any]) -> None:
        if d.refs.has(kinds.FINISH_BUNDLE):
            return
        card = await self._card(d)
        name = f"{d.job.job_id}.bundle.json"
        content = jcs(bundle)
        comment = f"Proof bundle of job {d.job.job_id}: `{VERIFY.format(bundle=name)}`"
        try:
            answer = await self.api.upload(card.channel, card.ts, name, content, comment)
        except SlackDeliveryError as exc:
            if exc.code not in FILES_REFUSED:
                raise
            log.warning("files refused in %s (%s); bundle posted inline", card.channel, exc.code)
            await self._thread_post(d, kinds.FINISH_BUNDLE, inline_bundle(name, content))
            return
        file_id = _file_id(answer)
        await d.refs.put(kinds.FINISH_BUNDLE, card.channel, card.ts, file_id=file_id)

    async def _escalate(self, d: Delivery) -> None:
        """Say loudly in the channel what is still privileged; when the channel refuses the
        bot, tell the requester in a DM instead (it must reach someone)."""
        if not await self._in_channel(d, self._escalate_in_channel):
            await self._tell_requester(d, kinds.ESCALATE_DM, self._escalation(d)["text"])

    def _escalation(self, d: Delivery) -> Json:
        still = [str(s) for s in d.event.detail.get("still_privileged", ())]
        return text_message(escalation_text(d.job.job_id, still or list(d.job.still_privileged)))

    async def _escalate_in_channel(self, d: Delivery) -> None:
        if d.refs.has(kinds.ESCALATE):
            return
        card = await self._card(d)
        message = {**self._escalation(d), "reply_broadcast": True}
        body = await self.api.post(card.channel, message, card.ts)
        await d.refs.put(kinds.ESCALATE, card.channel, _posted(body, card.channel).ts)


def awaiting(job: Job, revision: int) -> bool:
    """Whether approvals on plan ``revision`` are still being collected."""
    if revision == 0:
        return job.state == PENDING
    return job.state == ACTIVE and job.extension is not None and job.extension.revision == revision


def _kept(posted: Posted) -> dict[str, Any]:
    """What a ref records about a post besides where it is (to write it again, amended)."""
    return {k: v for k, v in posted.extra.items() if k not in ("channel", "ts")}


def _posted(body: Mapping[str, Any], channel: str) -> Posted:
    ts = body.get("ts")
    if not isinstance(ts, str):
        raise SlackDeliveryError("chat.postMessage", "no_ts_in_answer")
    where = body.get("channel")
    return Posted(where if isinstance(where, str) else channel, ts, {})


def _file_id(answer: Mapping[str, Any]) -> str:
    files = answer.get("files")
    if isinstance(files, Sequence) and files and isinstance(files[0], Mapping):
        return str(files[0].get("id", ""))
    return ""
