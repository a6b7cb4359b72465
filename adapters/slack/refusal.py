"""A job's incident channel that refuses the bot: archived, the bot removed, or gone.

Slack answers ``is_archived`` / ``not_in_channel`` / ``channel_not_found`` to a post there
(``is_inactive`` to an update, ``invalid_channel`` / ``posting_to_channel_denied`` to a file):
no retry changes that until someone acts in Slack. The job's posts in that channel are then
not tried again at every event, nor queued: its next event after a backoff (5 s doubling to
10 minutes, ``adapters.retry``) tries once more. The job's last event is the last try, so a
refusal is never retried for ever and never waits in the outbox ahead of other jobs.

The state is a message ref of the job (kind ``refusal:channel``), so every replica sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adapters.retry import outbox_delay
from adapters.slack.config import CHANNEL_ID
from adapters.slack.outbox import BACKOFF  # 5 s, 10 s, 20 s … capped at 10 min
from adapters.slack.refs import Posted
from adapters.slack.texts import inert
from adapters.slack.web import POSTING_RULES
from engine.timeutil import parse_iso

ARCHIVED = frozenset({"is_archived", "is_inactive", "posting_to_channel_denied"})


@dataclass(frozen=True)
class Refusal:
    """The channel refused the job's posts since ``since``, ``tries`` times; the next try is
    at the job's first event from ``retry_at`` on."""

    code: str
    method: str
    since: datetime
    tries: int
    retry_at: datetime

    @classmethod
    def of(cls, ref: Posted | None) -> Refusal | None:
        """The refusal a ref records, or None when there is none (or it has passed); a
        malformed one is an ``InputError`` (``parse_iso``)."""
        if ref is None or not ref.extra.get("refused"):
            return None
        doc = ref.extra
        tries = doc.get("tries")
        return cls(
            str(doc.get("code", "")),
            str(doc.get("method", "")),
            parse_iso(doc.get("since")),
            tries if isinstance(tries, int) and tries > 0 else 1,
            parse_iso(doc.get("retry_at")),
        )

    @classmethod
    def first(cls, code: str, method: str, now: datetime) -> Refusal:
        return cls(code, method, now, 1, now + outbox_delay(BACKOFF, 0))

    def again(self, code: str, method: str, now: datetime) -> Refusal:
        return Refusal(
            code, method, self.since, self.tries + 1, now + outbox_delay(BACKOFF, self.tries)
        )

    def due(self, now: datetime) -> bool:
        return now >= self.retry_at

    def as_ref(self) -> dict[str, object]:
        return {
            "refused": True,
            "code": self.code,
            "method": self.method,
            "since": self.since.isoformat(),
            "tries": self.tries,
            "retry_at": self.retry_at.isoformat(),
        }


def archived(code: str) -> bool:
    """Whether ``code`` says the channel is archived (else the bot is not in it, or it is
    gone: inviting the bot is what helps)."""
    return code in ARCHIVED


def what_to_do(code: str, channel: str) -> str:
    """The operator's part of the log line: what makes the channel take posts again."""
    if code in POSTING_RULES:
        return (
            f"a posting rule of the workspace or of {channel} refuses the bot: an admin must "
            f"allow the bot to post in {channel}; the job's card and thread carry on at its "
            "next event after that"
        )
    if archived(code):
        return (
            f"{channel} is archived: the job's card and thread there stop (approvals go on in "
            f"the approvers' DMs, the job ends as planned); unarchive {channel} to show them again"
        )
    return (
        f"invite the bot to {channel} (/invite @breakglass there); the job's card and thread "
        "carry on at its next event after that"
    )


def requester_text(job_id: str, channel: str, code: str) -> str:
    """What the requester is told, once, when the job's channel refuses the bot."""
    where = f"<#{channel}>" if CHANNEL_ID.fullmatch(channel) else inert(channel)
    head = (
        f":warning: The status card and thread of break-glass job {inert(job_id)} could not "
        f"be posted in {where} ({inert(code)}): "
    )
    if code in POSTING_RULES:
        return head + (
            "a posting rule of the workspace or the channel refuses the bot. Ask an admin to "
            "allow the bot to post there; the job goes on, and approvals go on in the "
            "approvers' DMs."
        )
    if archived(code):
        return head + (
            "the channel is archived. The job goes on and ends as planned; approvals go on in "
            "the approvers' DMs, and its proof bundle is kept by the service."
        )
    return head + (
        "the bot is not a member there. Ask someone to `/invite @breakglass` in that channel; "
        "approvals go on in the approvers' DMs."
    )
