"""Where the adapter posted what, kept in the store's message refs (platform ``slack``).

Every post is recorded under a kind, so a delivery retried from the outbox skips what already
went out and updates what it must update in place:

* ``status``                  the status card in the incident channel (its ts is the thread)
* ``approval:<user id>``      the approval prompt in an approver's DM
* ``unreachable:<user id>:<revision>``  the approver Slack cannot reach (given up), and where
                              the requester was told
* ``notice:card``             where the requester was told the job's channel refused the bot
* ``refusal:channel``         whether the job's channel refuses the bot, since when, and when
                              to try again (``adapters.slack.refusal``; its ts is empty)
* ``notice:frozen``           where the thread was told the card can no longer be updated
* ``receipt:<seq>``           one receipts message in the thread, from record ``seq`` on;
                              ``seqs`` lists every record it shows (absent: just ``seq``)
* ``announce:<event>:<when>`` a failure, delayed-removal or swept-grant announcement in the
                              thread
* ``warning``, ``finish:kill``, ``finish:audit``, ``finish:bundle``, ``escalate``
* ``escalate:requester``      where the requester was told of an escalation the channel refused
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.ports import MessageRef, MessageRefs

PLATFORM = "slack"
STATUS = "status"
WARNING = "warning"
ESCALATE = "escalate"
ESCALATE_DM = "escalate:requester"  # where the requester was told, the channel refusing
FINISH_KILL = "finish:kill"
FINISH_AUDIT = "finish:audit"
FINISH_BUNDLE = "finish:bundle"
CARD_REFUSED = "notice:card"  # where the requester was told the channel refused the bot
CHANNEL_REFUSAL = "refusal:channel"
CARD_FROZEN = "notice:frozen"  # where the thread was told the card can no longer be updated


def approval_kind(user_id: str) -> str:
    return f"approval:{user_id}"


def unreachable_kind(user_id: str, revision: int) -> str:
    # Not under "approval:": such a ref names no message with buttons (binding.BUTTON_KINDS).
    return f"unreachable:{user_id}:{revision}"


def receipt_kind(seq: int) -> str:
    return f"receipt:{seq:06d}"


def receipted(refs: Refs) -> set[int]:
    """The seqs of every record already shown in a receipts message."""
    shown: set[int] = set()
    for kind in refs.kinds("receipt:"):
        seqs = refs.found[kind].ref.get("seqs")
        if isinstance(seqs, list):
            shown.update(s for s in seqs if isinstance(s, int))
        elif kind.removeprefix("receipt:").isdecimal():
            shown.add(int(kind.removeprefix("receipt:")))
    return shown


@dataclass(frozen=True)
class Posted:
    """A message we posted: its channel and ts, plus what we last rendered into it."""

    channel: str
    ts: str
    extra: Mapping[str, Any]

    @classmethod
    def of(cls, ref: MessageRef) -> Posted | None:
        doc = ref.ref
        channel, ts = doc.get("channel"), doc.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            return None
        return cls(channel, ts, doc)


class Refs:
    """The message refs of one job, read once per delivery and written as posts happen."""

    def __init__(self, store: MessageRefs, job_id: str, found: Mapping[str, MessageRef]) -> None:
        self.store = store
        self.job_id = job_id
        self.found = dict(found)

    @classmethod
    async def load(cls, store: MessageRefs, job_id: str) -> Refs:
        refs = await store.message_refs(job_id, PLATFORM)
        return cls(store, job_id, {r.kind: r for r in refs})

    def get(self, kind: str) -> Posted | None:
        ref = self.found.get(kind)
        return Posted.of(ref) if ref is not None else None

    def has(self, kind: str) -> bool:
        return kind in self.found

    def kinds(self, prefix: str) -> list[str]:
        return sorted(k for k in self.found if k.startswith(prefix))

    async def put(self, kind: str, channel: str, ts: str, **extra: Any) -> None:
        ref = MessageRef(self.job_id, PLATFORM, kind, {"channel": channel, "ts": ts, **extra})
        await self.store.put_message_ref(ref)
        self.found[kind] = ref
