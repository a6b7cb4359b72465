"""The Teams ``ChatPort``: what each job event shows in the incident thread.

A job's thread hangs off its status card (the request form the requester filled in, turned
into the countdown). Receipts, approval prompts, results, the kill result, the audit summary
and the proof bundle are replies to it; the status and approval cards are updated in place.
Where each message went is kept as a message ref (conversation reference + activity id), so
a re-delivered event updates what exists instead of posting it twice.

``deliver`` raises ``ChatError`` when Teams did not take something; the job service then keeps
the event in the outbox, and :meth:`TeamsChat.deliver_queued` tries again later. What Teams
refuses for good is not kept (docs/teams.md §8): a message it holds no more (deleted in
Teams) is posted again, and a message it will never take (too large, malformed) is left
out with one WARNING while the rest of the event goes out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.retry import Backoff, outbox_delay
from adapters.teams import render
from adapters.teams.connector import Connector, TeamsRefused, reference_from
from adapters.teams.people import People
from cards import teams
from cards.job_views import (
    announcement_key,
    announcement_view,
    approval_result_view,
    audit_summary_view,
    kill_result_view,
    receipt_line,
)
from cards.text import clean_line, teams_markdown
from engine import lifecycle
from engine.chat_ports import ChatPorts
from engine.errors import ChatError, JobNotFound
from engine.job import Job, describe_grant
from engine.ports import ChatEvent, MessageRef, OutboxItem

log = logging.getLogger("breakglass.teams.delivery")
PLATFORM = "teams"
STATUS = "status"
RECEIPTS = "receipts"
APPROVAL = "approval:"
OUTBOX_LEASE = timedelta(minutes=2)
# Capped at a minute: after an outage, what waited goes out within a minute of Teams being
# back (a 15-minute cap left the end of a job posted minutes after newer jobs' posts). The
# first item probes Teams; the rest wait without calls, so a long outage costs one call a minute.
OUTBOX_BACKOFF = Backoff(base_delay=30.0, max_delay=60.0, jitter=False)


@dataclass
class Thread:
    """One job's messages in Teams during one delivery."""

    chat: TeamsChat
    job: Job
    scene: render.Scene
    probe: bool
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def put(self, kind: str, doc: Mapping[str, Any]) -> None:
        self.refs[kind] = dict(doc)
        await self.chat.ports.store.put_message_ref(
            MessageRef(self.job.job_id, PLATFORM, kind, doc)
        )

    def _reference_doc(self) -> Mapping[str, Any]:
        status = self.refs.get(STATUS)
        if status is not None and "reference" in status:
            return status["reference"]  # type: ignore[no-any-return]
        reference = self.job.channel.get("reference")
        if not isinstance(reference, Mapping):
            raise ChatError(f"job {self.job.job_id} has no Teams conversation to post to")
        return reference

    async def status_id(self) -> str:
        """The status card's activity id, posting the card first if it is not there yet."""
        status = self.refs.get(STATUS)
        if status is not None and status.get("activity_id"):
            return str(status["activity_id"])
        reference_doc = self._reference_doc()
        card = render.status(self.job, self.scene)
        message = render.card_message(card)
        activity_id = await self.chat.connector.send(
            reference_from(reference_doc), message, probe=self.probe
        )
        doc = {"reference": dict(reference_doc), "activity_id": activity_id}
        await self.put(STATUS, doc | {"digest": render.digest(card)})
        return activity_id

    async def reply(self, card: render.Json | None = None, text: str = "") -> str:
        """Post in the status card's thread. Teams answers 404 ActivityNotFoundInConversation
        to a reply to a status card deleted there: it is posted again, the reply under it."""
        try:
            return await self._reply(card, text)
        except TeamsRefused as exc:
            if not exc.gone:
                raise
            self.lost(STATUS, exc)
            return await self._reply(card, text)

    async def _reply(self, card: render.Json | None, text: str) -> str:
        parent = await self.status_id()
        message = render.card_message(card) if card is not None else render.text_message(text)
        reference = reference_from(self._reference_doc())
        return await self.chat.connector.reply(reference, parent, message, probe=self.probe)

    def lost(self, kind: str, exc: TeamsRefused) -> None:
        """The message ``kind`` is gone from Teams: forget it, so it is posted anew."""
        log.warning(
            "teams: %s message of job %s is gone from Teams (%s); posting it again",
            kind,
            self.job.job_id,
            str(exc).removeprefix("Teams refused it: "),
        )
        self.refs.pop(kind, None)

    async def keep(self, kind: str, card: render.Json, **extra: Any) -> None:
        """Show ``card`` as the message ``kind``: updated in place if posted, else a reply.

        A card Teams will never take is left out (one WARNING); the caller goes on."""
        known = self.refs.get(kind)
        fingerprint = render.digest(card)
        wanted = {"digest": fingerprint, **extra}
        if known is not None and all(known.get(k) == v for k, v in wanted.items()):
            return
        try:
            doc = await self._show(kind, known, card)
        except TeamsRefused as exc:
            if not exc.final:
                raise
            self.chat.left_out(self.job.job_id, kind, exc)
            return
        await self.put(kind, doc | wanted)

    async def _show(
        self, kind: str, known: dict[str, Any] | None, card: render.Json
    ) -> dict[str, Any]:
        if known is not None:
            doc = dict(known)
            reference = reference_from(doc.get("reference") or self._reference_doc())
            message = render.card_message(card)
            try:
                await self.chat.connector.update(
                    reference, str(doc["activity_id"]), message, probe=self.probe
                )
                return doc
            except TeamsRefused as exc:
                if not exc.gone:
                    raise
                self.lost(kind, exc)
        if kind == STATUS:  # the thread's first message: posted on its own, not as a reply
            await self.status_id()
            return dict(self.refs[STATUS])
        activity_id = await self.reply(card)
        return {"reference": dict(self._reference_doc()), "activity_id": activity_id}


# --- what each event shows --------------------------------------------------------------------


async def _receipts(thread: Thread, event: ChatEvent) -> None:
    """The records not shown yet, as ONE reply: posts per job are bounded by the pacing of
    receipts events, not by the chain's length."""
    posted = set(thread.refs.get(RECEIPTS, {}).get("posted", []))
    new = [record for record in event.records if record.seq not in posted]
    if not new:
        return
    await thread.reply(teams.receipts_card([receipt_line(record) for record in new]))
    await thread.put(RECEIPTS, {"posted": sorted(posted | {record.seq for record in new})})


async def _ask_approvers(thread: Thread, event: ChatEvent) -> None:
    revision = int(event.detail.get("revision", 0))
    await thread.status_id()
    card = render.approval_shared(thread.job, revision, thread.scene)
    await thread.keep(f"{APPROVAL}{revision}", card, revision=revision, closed=False)


async def _update_cards(thread: Thread, event: ChatEvent) -> None:
    await thread.keep(STATUS, render.status(thread.job, thread.scene))
    for kind, doc in list(thread.refs.items()):
        if not kind.startswith(APPROVAL) or doc.get("closed"):
            continue
        revision = int(doc.get("revision", kind.removeprefix(APPROVAL)))
        card = render.approval_shared(thread.job, revision, thread.scene)
        still_open = render.awaiting(thread.job) and revision == _open_revision(thread.job)
        await thread.keep(kind, card, revision=revision, closed=not still_open)


def _open_revision(job: Job) -> int:
    return job.extension.revision if job.extension is not None else job.plan.revision


async def _announce(thread: Thread, event: ChatEvent) -> None:
    said = announcement_view(thread.job, thread.scene.names, event.detail)
    if said is not None:  # a failure or a delayed removal: its own message, once
        await thread.keep(announcement_key(event.detail), teams.moment.announcement(said))
        return
    decision = str(event.detail.get("decision", ""))
    decision = "deny" if decision == "deny_extension" else decision
    by = str(event.detail.get("by", ""))
    if decision not in ("approve", "deny", "withdraw") or not by:
        return
    view = approval_result_view(thread.job, thread.scene.names, decision, by, event.now)
    await thread.reply(teams.moment.approval_result(view))


async def _notice(thread: Thread, event: ChatEvent) -> None:
    await thread.keep(STATUS, render.status(thread.job, thread.scene))


async def _finish(thread: Thread, event: ChatEvent) -> None:
    await _update_cards(thread, event)
    job, names = thread.job, thread.scene.names
    records = await thread.chat.ports.records.chain(job.job_id)
    view = kill_result_view(job, records, names)
    await thread.keep("kill_result", teams.moment.kill_result(view))
    bundle = event.bundle or await thread.chat.ports.records.bundle(job)
    bundle_hash = str(bundle.get("payload_hash_b64u", ""))
    summary = audit_summary_view(job, records, names, bundle_hash, thread.chat.public_url)
    await thread.keep("audit_summary", teams.moment.audit_summary(summary))
    for index, card in enumerate(render.bundle_cards(bundle, summary.bundle_file), 1):
        await thread.keep(f"bundle:{index}", card)


async def _escalate(thread: Thread, event: ChatEvent) -> None:
    text = (
        f"ESCALATION: job {thread.job.job_id} could not verify its rollback. "
        f"Still privileged: {describe_grant(thread.job)}. Remove this access by hand now."
    )
    refused = str(event.detail.get("refused") or "")
    if refused:  # why the tenant last refused the rollback: a code, a number, a hint
        text += f" The tenant's last refusal: {teams_markdown(clean_line(refused, 300), 400)}"
    await thread.reply(text=text)


Handler = Callable[[Thread, ChatEvent], Awaitable[None]]
HANDLERS: dict[str, Handler] = {
    "receipts": _receipts,
    lifecycle.ASK_APPROVERS: _ask_approvers,
    lifecycle.UPDATE_CARDS: _update_cards,
    lifecycle.ANNOUNCE: _announce,
    lifecycle.NOTICE: _notice,
    lifecycle.FINISH: _finish,
    lifecycle.ESCALATE: _escalate,
}


# --- the port ---------------------------------------------------------------------------------


class TeamsChat:
    platform = PLATFORM

    def __init__(
        self,
        ports: ChatPorts,
        connector: Connector,
        people: People,
        names: Mapping[str, str],
    ) -> None:
        self.ports = ports  # jobs, records, limits and the outbox store
        self.connector = connector
        self.people = people
        self.names = names
        self.public_url: str | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def scene(self, now: datetime) -> render.Scene:
        return render.Scene(self.names, self.ports.limits.approvers, now, self.people.card_user_ids)

    async def deliver(self, event: ChatEvent, *, probe: bool = False) -> None:
        handler = HANDLERS.get(event.kind)
        if handler is None:
            return
        job = Job.from_json(event.job)
        async with self._locks.setdefault(job.job_id, asyncio.Lock()):
            stored = await self.ports.store.message_refs(job.job_id, PLATFORM)
            refs = {ref.kind: dict(ref.ref) for ref in stored}
            try:
                await handler(Thread(self, job, self.scene(event.now), probe, refs), event)
            except TeamsRefused as exc:
                if not exc.final:  # the bot is shut out of the conversation: try later
                    raise
                self.left_out(job.job_id, event.kind, exc)  # would be refused again

    def left_out(self, job_id: str, what: str, exc: TeamsRefused) -> None:
        """One WARNING for a message Teams will never take as it is; it is not retried."""
        log.warning(
            "teams: %s of job %s left out: %s (not retried; the job goes on)",
            what,
            job_id,
            exc,
        )

    async def deliver_queued(self, now: datetime) -> int:
        """Deliver what Teams missed, oldest first; returns how many events went out.

        The first event probes Teams; if it still fails, everything due waits for the next
        call (with backoff), in order. A refusal is not an outage: only that job's events
        wait (in order), the other jobs' go out.
        """
        items = await self.ports.store.due(PLATFORM, now, lease_until=now + OUTBOX_LEASE)
        sent = 0
        stalled: set[str] = set()  # jobs Teams refused this round: their later events wait
        for position, item in enumerate(items):
            later = now + outbox_delay(OUTBOX_BACKOFF, item.attempts)
            if item.job_id in stalled:
                await self.ports.store.postpone(item.item_id, later)
                continue
            try:
                await self._redeliver(item, now)
            except TeamsRefused as exc:
                log.warning("queued Teams event of job %s still refused (%s)", item.job_id, exc)
                stalled.add(item.job_id)
                await self.ports.store.postpone(item.item_id, later)
                continue
            except ChatError as exc:
                log.info("Teams still unreachable (%s); %d events wait", exc, len(items) - sent)
                for waiting in items[position:]:
                    later = now + outbox_delay(OUTBOX_BACKOFF, waiting.attempts)
                    await self.ports.store.postpone(waiting.item_id, later)
                break
            await self.ports.store.delivered(item.item_id)
            sent += 1
        return sent

    async def _redeliver(self, item: OutboxItem, now: datetime) -> None:
        try:
            event = await self._rebuild(item, now)
        except JobNotFound:
            log.warning("queued Teams event for unknown job %s dropped", item.job_id)
            return
        await self.deliver(event, probe=True)

    async def _rebuild(self, item: OutboxItem, now: datetime) -> ChatEvent:
        """The event again, with the job as it is now (cards show the latest truth)."""
        job = await self.ports.jobs.load(item.job_id)
        kind = str(item.payload.get("kind", ""))
        seqs = set(item.payload.get("seqs", ()))
        records = (
            [r for r in await self.ports.records.chain(job.job_id) if r.seq in seqs] if seqs else []
        )
        bundle = None
        if kind == lifecycle.FINISH and job.resolved:
            bundle = await self.ports.records.bundle(job)
        detail = item.payload.get("detail", {})
        return ChatEvent(kind, job.to_json(), detail, records, now, bundle)
