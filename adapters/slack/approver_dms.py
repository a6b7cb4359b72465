"""The approvers' DMs in Slack: each approver asked in a DM of their own, an approver Slack
will never reach given up on (and the requester told), and each DM turned into the result
(buttons gone) once its plan is decided.

Apart from :mod:`adapters.slack.outbound` because the DMs are the one part of a delivery
that is not in the job's channel: each approver is asked on their own (one failing holds
back no other), and a DM that can no longer be edited is left as it is.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.slack import refs as kinds
from adapters.slack.channel_posts import ChannelPosts, Delivery, Json, digest, kept
from adapters.slack.texts import inert, requester_mention
from adapters.slack.web import EDIT_CLOSED, MESSAGE_GONE, SlackDeliveryError
from cards import job_views as views
from cards import slack as render
from engine.job import ACTIVE, PENDING, Job
from engine.timeutil import parse_iso

log = logging.getLogger("breakglass.slack")


class ApproverDms(ChannelPosts):
    """The part of ``SlackChat`` that asks the approvers and closes their DMs."""

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
            await d.refs.put(kind, found.channel, found.ts, **{**kept(found), "closed": True})
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


def awaiting(job: Job, revision: int) -> bool:
    """Whether approvals on plan ``revision`` are still being collected."""
    if revision == 0:
        return job.state == PENDING
    return job.state == ACTIVE and job.extension is not None and job.extension.revision == revision
