"""The fake Slack's workspace: the channels it knows (and which of them archived or left by
the bot), the messages posted and deleted, the files uploaded, the trigger ids issued, and
the Web API methods that read and change them (``_chat_postMessage`` for
``chat.postMessage``, and so on).

Apart from :mod:`tests.integration.slack.fake_slack` (the server, the record of calls, the
faults on demand) because this is what Slack holds and does when it takes a call; the
refusals it answers by rule are :mod:`tests.integration.slack.fake_slack_rules`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.integration.slack.block_kit import VIEW_BYTES, view_problems
from tests.integration.slack.fake_slack_rules import (
    TRIGGER_SECONDS,
    Json,
    invalid,
    refusal,
    truncated,
)


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    content: bytes | None = None
    channel: str | None = None
    thread_ts: str | None = None
    title: str = ""


@dataclass
class Workspace:
    """What Slack holds for the bot (its token, its channels, their messages and files)."""

    token: str
    channels: set[str]
    messages: dict[tuple[str, str], Json] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    archived: set[str] = field(default_factory=set)  # channels an admin archived
    left: set[str] = field(default_factory=set)  # channels the bot was removed from
    restricted: dict[str, str] = field(default_factory=dict)  # channel → its posting rule
    files_allowed: bool = True
    team_id: str = "T0FAKE"
    # Seconds on the test's clock (the env sets its manual clock): trigger ids expire on it.
    clock: Callable[[], float] = field(default=lambda: 0.0)
    triggers: dict[str, float] = field(default_factory=dict)  # issued trigger id → when
    exchanged: set[str] = field(default_factory=set)  # trigger ids a modal was opened with
    deleted: set[tuple[str, str]] = field(default_factory=set)  # (channel, ts) deleted
    # The workspace's message editing setting: seconds after posting that an edit is taken
    # (chat.update answers ``edit_window_closed`` after); None, Slack's default, is any time.
    edit_window: float | None = None
    posted_at: dict[tuple[str, str], float] = field(default_factory=dict)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -------------------------------------------------------- what happens to it

    def archive(self, channel: str) -> None:
        """An admin archived ``channel``: posts answer ``is_archived``, updates ``is_inactive``
        ("The message cannot be edited within a frozen, archived or deleted channel")."""
        self.archived.add(channel)

    def remove_bot(self, channel: str) -> None:
        """Someone removed the bot from ``channel``: posts answer ``not_in_channel``."""
        self.left.add(channel)

    def restrict(self, channel: str, code: str = "restricted_action_read_only_channel") -> None:
        """A posting rule refuses the bot in ``channel``, answered as chat.postMessage's table
        says: a read-only channel (or ``restricted_action``, a workspace preference, or
        ``ekm_access_denied``) every post, a thread-only one top-level posts, a
        non-threadable one thread replies. Ephemerals are refused alike (undocumented: the
        strict choice); chat.update of the bot's own card is taken (chat.update lists none
        of these answers)."""
        self.restricted[channel] = code

    def unrestrict(self, channel: str) -> None:
        self.restricted.pop(channel, None)

    def _restricted(self, channel: str, p: Json) -> Json | None:
        code = self.restricted.get(channel)
        reply = p.get("thread_ts") is not None
        if code is None:
            return None
        if (code, reply) in (
            ("restricted_action_thread_only_channel", True),
            ("restricted_action_non_threadable_channel", False),
        ):
            return None
        return {"ok": False, "error": code}

    def invite_bot(self, channel: str) -> None:
        self.left.discard(channel)
        self.channels.add(channel)

    def issue_trigger(self, trigger_id: str) -> None:
        """Slack sent ``trigger_id`` in an interaction now (SlackSender calls this)."""
        self.triggers[trigger_id] = self.clock()

    def delete_message(self, channel: str, ts: str) -> None:
        """The message is deleted (by an admin, or a retention policy). One with replies
        stays as a tombstone its thread hangs on; one without is gone, and so is its thread."""
        key = (channel, ts)
        replies = any(
            m.get("thread_ts") == ts for (ch, _), m in self.messages.items() if ch == channel
        )
        self.deleted.add(key)
        if replies:
            self.messages[key] = {"type": "message", "subtype": "tombstone", "ts": ts, "text": ""}
        else:
            self.messages.pop(key, None)

    def _refused_channel(self, channel: str, archived: str, left: str) -> Json | None:
        """Slack's answer for a channel the bot cannot use, by what happened to it."""
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.archived:
            return {"ok": False, "error": archived}
        if channel in self.left:
            return {"ok": False, "error": left}
        return None

    # -------------------------------------------------------------------- methods

    def _apps_connections_open(self, p: Json) -> Json:
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}

    def _auth_test(self, p: Json) -> Json:
        return {"ok": True, "team_id": self.team_id, "user_id": "UBOT", "bot_id": "BBOT"}

    def _conversations_open(self, p: Json) -> Json:
        users = str(p.get("users", ""))
        if not users or "," in users:
            return {"ok": False, "error": "users_list_not_supplied"}
        channel = "D" + users
        self.channels.add(channel)
        return {"ok": True, "channel": {"id": channel}}

    def _next_ts(self) -> str:
        return f"1764061200.{next(self._ts):06d}"

    def _chat_postMessage(self, p: Json) -> Json:
        channel = str(p.get("channel", ""))
        refused = (
            self._refused_channel(channel, "is_archived", "not_in_channel")
            or self._restricted(channel, p)
            or refusal(p)
        )
        if refused is not None:
            return refused
        thread = p.get("thread_ts")
        if thread is not None and (channel, thread) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = self._next_ts()
        text, warned = truncated(p)
        message = {"type": "message", "text": text, "ts": ts, "bot_id": "BBOT"}
        message |= {k: p[k] for k in ("blocks", "thread_ts") if k in p}
        self.messages[(channel, ts)] = message
        self.posted_at[(channel, ts)] = self.clock()
        return {"ok": True, "channel": channel, "ts": ts, "message": message} | warned

    def _chat_update(self, p: Json) -> Json:
        key = (str(p.get("channel", "")), str(p.get("ts", "")))
        # What chat.update answers for a channel the bot left is not documented.
        gone = self._refused_channel(key[0], "is_inactive", "channel_not_found")
        if gone is not None:
            return gone
        if key not in self.messages or key in self.deleted:
            return {"ok": False, "error": "message_not_found"}
        window = self.edit_window
        if window is not None and self.clock() - self.posted_at.get(key, 0.0) > window:
            return {"ok": False, "error": "edit_window_closed"}
        refused = refusal(p)
        if refused is not None:
            return refused
        text, warned = truncated(p)
        message = self.messages[key] | {k: p[k] for k in ("blocks",) if k in p}
        message |= {"text": text} if "text" in p else {}
        self.messages[key] = message
        return {
            "ok": True,
            "channel": key[0],
            "ts": key[1],
            "text": message["text"],
            "message": message,
        } | warned

    def _chat_postEphemeral(self, p: Json) -> Json:
        channel = str(p.get("channel", ""))
        gone = self._refused_channel(channel, "is_archived", "not_in_channel")
        gone = gone or self._restricted(channel, {})
        if gone is not None:
            return gone
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        refused = refusal(p)
        if refused is not None:
            return refused
        return {"ok": True, "message_ts": self._next_ts()} | truncated(p)[1]

    def _views_open(self, p: Json) -> Json:
        view = p.get("view")
        problems = view_problems(view)
        if problems:
            return invalid("invalid_arguments", problems, listed=False)
        if len(json.dumps(view).encode()) > VIEW_BYTES:
            return {"ok": False, "error": "view_too_large"}
        trigger = str(p.get("trigger_id") or "")
        issued = self.triggers.get(trigger)
        if issued is None:
            return {"ok": False, "error": "invalid_trigger_id"}
        if trigger in self.exchanged:
            return {"ok": False, "error": "exchanged_trigger_id"}
        if self.clock() - issued > TRIGGER_SECONDS:
            return {"ok": False, "error": "expired_trigger_id"}
        self.exchanged.add(trigger)
        opened = dict(view or {}) | {"id": f"V{next(self._ts):08d}", "hash": "h1"}
        return {"ok": True, "view": opened}

    def _views_update(self, p: Json) -> Json:
        return {"ok": True, "view": dict(p.get("view") or {})}

    def _files_getUploadURLExternal(self, p: Json) -> Json:
        if not self.files_allowed:
            return {"ok": False, "error": "file_uploads_disabled"}
        try:
            length = int(p.get("length", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.uploads[file_id] = Upload(file_id, str(p.get("filename", "")), length)
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, p: Json) -> Json:
        channel = p.get("channel_id")
        if channel is not None and channel not in self.channels:
            return {"ok": False, "error": "invalid_channel"}  # "Channel could not be found"
        if channel in self.archived | self.left:
            # Which of its two channel errors it answers here is not documented.
            return {"ok": False, "error": "posting_to_channel_denied"}
        done = []
        for item in p.get("files") or []:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None or upload.content is None or len(upload.content) != upload.length:
                return {"ok": False, "error": "file_not_found"}
            upload.channel = p.get("channel_id")
            upload.thread_ts = p.get("thread_ts")
            upload.title = str(item.get("title") or upload.filename)
            done.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        if not done:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "files": done}
