"""The end of a job in Slack: the kill result, the audit summary and the proof bundle in
the card's thread, and the escalation that must reach someone when privilege is left behind.

Apart from :mod:`adapters.slack.outbound` because the end posts a file (or, where files are
refused, the bundle inline) and, when the channel refuses the bot, turns to the requester.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.slack import refs as kinds
from adapters.slack.channel_posts import ChannelPosts, Delivery, Json, as_posted
from adapters.slack.texts import escalation_text, inline_bundle, text_message
from adapters.slack.web import FILES_REFUSED, SlackDeliveryError
from cards import job_views as views
from cards import slack as render
from cards.moments import VERIFY_COMMAND as VERIFY
from engine.canonical import jcs

log = logging.getLogger("breakglass.slack")


class JobEnd(ChannelPosts):
    """The part of ``SlackChat`` that tells how the job ended."""

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
        refused = str(d.event.detail.get("refused") or "")
        text = escalation_text(d.job.job_id, still or list(d.job.still_privileged), refused)
        return text_message(text)

    async def _escalate_in_channel(self, d: Delivery) -> None:
        if d.refs.has(kinds.ESCALATE):
            return
        card = await self._card(d)
        message = {**self._escalation(d), "reply_broadcast": True}
        body = await self.api.post(card.channel, message, card.ts)
        await d.refs.put(kinds.ESCALATE, card.channel, as_posted(body, card.channel).ts)


def _file_id(answer: Mapping[str, Any]) -> str:
    files = answer.get("files")
    if isinstance(files, Sequence) and files and isinstance(files[0], Mapping):
        return str(files[0].get("id", ""))
    return ""
