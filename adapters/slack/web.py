"""The Slack Web API calls the adapter makes, each failure mapped to ``SlackDeliveryError``.

A 429 is retried in place (``adapters.retry``) when Slack asks for a short wait;
a longer wait is not sat out here (a job's lock is held while its cards are delivered): the
call fails with ``retry_after`` set and the outbox tries again after that time. Until then
no call of that method (of ``chat.postMessage``: in that channel, its limit is per channel)
goes to Slack: each fails at once with what is left of the wait, so neither another job's
delivery nor the outbox's next round asks again before Slack said it may. A 503 with a
``Retry-After`` is honoured the same way, but never waited out in place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.retry import Backoff, Sleep, retry_after_of, retry_call
from adapters.slack.config import SlackConfig
from engine.errors import ChatError

log = logging.getLogger("breakglass.slack")
RATE_LIMIT_RETRIES = 2
# Statuses whose ``Retry-After`` we honour (RFC 9110 §10.2.3: 503 and 429 carry it).
WAIT_STATUSES = frozenset({429, 503})
Json = dict[str, Any]
Clock = Callable[[], datetime]
# Slack's answers that no retry will change for this recipient (a deactivated or unknown
# user, a DM the bot may not open, a channel it is not in): give up on them, say so.
RECIPIENT_GONE = frozenset(
    {
        "user_not_found",
        "user_not_visible",
        "user_disabled",
        "cannot_dm_bot",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "messages_tab_disabled",
    }
)
# chat.update of a message that is gone (deleted by someone with the right, or by the
# workspace's retention policy): no retry brings it back, so the card is posted again.
MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message"})
# chat.update refused by the workspace's message editing setting: the message stays as it is.
EDIT_CLOSED = frozenset({"edit_window_closed"})
# The bot token itself is refused: nothing works until an operator replaces it.
AUTH_FAILED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
# A posting rule of the workspace or the channel refuses the bot (chat.postMessage's table:
# "A workspace preference prevents the authenticated user from posting", a read-only,
# thread-only or non-threadable channel; "Administrators have suspended the ability to post
# a message"). On files.completeUploadExternal ``restricted_action`` means files are refused
# instead (FILES_REFUSED), which the bundle's upload checks first.
POSTING_RULES = frozenset(
    {
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "ekm_access_denied",
    }
)
# The job's channel refuses the bot (archived, the bot removed, deleted, a posting rule): no
# retry changes that soon; chat.update says ``is_inactive`` ("a frozen, archived or deleted
# channel"), files.completeUploadExternal ``invalid_channel`` or ``posting_to_channel_denied``.
CHANNEL_REFUSED = POSTING_RULES | {
    "is_archived",
    "is_inactive",
    "channel_not_found",
    "not_in_channel",
    "invalid_channel",
    "posting_to_channel_denied",
}
# Slack's answers when a workspace forbids files or the token lacks the scope: post inline.
FILES_REFUSED = frozenset(
    {"missing_scope", "not_allowed_token_type", "restricted_action", "file_uploads_disabled"}
)


# The bot scope each Web API method we call needs (slack/manifest.yaml asks for exactly these,
# plus "commands" for the slash command and "app_mentions:read" for the event).
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",
    "views.open": None,  # needs only the trigger of an interaction
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
INBOUND_SCOPES = frozenset({"commands", "app_mentions:read"})


class SlackDeliveryError(ChatError):
    """A Slack Web API call failed; ``code`` is Slack's error (or the transport's)."""

    def __init__(self, method: str, code: str, retry_after: float | None = None) -> None:
        super().__init__(f"Slack {method} failed: {code}")
        self.method = method
        self.code = code
        self.retry_after = retry_after

    @property
    def recipient_gone(self) -> bool:
        return self.code in RECIPIENT_GONE

    @property
    def channel_refused(self) -> bool:
        return self.code in CHANNEL_REFUSED

    @property
    def auth_failed(self) -> bool:
        return self.code in AUTH_FAILED


def _status(exc: SlackApiError) -> int:
    """The HTTP status of a refused call. slack_sdk's ``response`` is its own answer, or the
    raw aiohttp one when a body labelled JSON was not (an error page from a proxy)."""
    answer = exc.response
    status = getattr(answer, "status_code", None)
    if status is None:
        status = getattr(answer, "status", 0)
    return status if isinstance(status, int) else 0


def _asked(exc: BaseException, now: datetime) -> float | None:
    """Seconds a 429 or 503 asked us to wait (delta or HTTP-date), else None."""
    if not isinstance(exc, SlackApiError) or _status(exc) not in WAIT_STATUSES:
        return None
    return retry_after_of(getattr(exc.response, "headers", None), now)


def _mapped(method: str, exc: SlackApiError, now: datetime) -> SlackDeliveryError:
    """Slack's error code (or the HTTP status when the body was not Slack's JSON)."""
    data = getattr(exc.response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    code = str(error or f"http_{_status(exc)}")[:80]
    return SlackDeliveryError(method, code, _asked(exc, now))


def _limit_key(method: str, channel: str | None) -> tuple[str, str]:
    """What one ``Retry-After`` holds back: chat.postMessage per channel ("one message per
    second per channel", the rate limits page), any other method whole."""
    return (method, channel or "") if method == "chat.postMessage" else (method, "")


def make_client(config: SlackConfig, token: str | None) -> AsyncWebClient:
    """slack_sdk's client without its own retry handlers: ``SlackApi`` retries 429s itself."""
    return AsyncWebClient(
        token=token,
        base_url=config.api_base,
        timeout=max(int(config.timeout), 1),
        retry_handlers=[],
    )


class SlackApi:
    """The few Web API methods breakglass uses (and the scopes they need, see the manifest)."""

    def __init__(
        self,
        client: AsyncWebClient,
        config: SlackConfig,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.clock = clock  # the service's: Retry-After holds until then on its time
        self.max_retry_after = config.max_retry_after
        # A 429 is waited out in place only when Slack asks for a short wait.
        self.backoff = Backoff(base_delay=0.0, max_delay=0.0, attempts=RATE_LIMIT_RETRIES + 1)
        # One call's time: the request, plus the short 429 waits it may take.
        self.per_call = config.timeout + RATE_LIMIT_RETRIES * (config.max_retry_after + 1.0)
        self.auth_failing = False  # said loudly once; said again only after a call worked
        self.held_until: dict[tuple[str, str], datetime] = {}  # by _limit_key

    def _asked(self, exc: BaseException) -> float | None:
        return _asked(exc, self.clock())

    def _short_wait(self, exc: BaseException) -> bool:
        asked = self._asked(exc)
        limited = isinstance(exc, SlackApiError) and _status(exc) == 429
        return limited and asked is not None and asked <= self.max_retry_after

    def _hold(self, key: tuple[str, str]) -> None:
        """Refuse at once a call Slack asked us not to make yet (its Retry-After)."""
        until = self.held_until.get(key)
        if until is None:
            return
        left = (until - self.clock()).total_seconds()
        if left <= 0:
            del self.held_until[key]
            return
        raise SlackDeliveryError(key[0], "ratelimited", left)

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[AsyncSlackResponse]],
        calls: int = 1,
        channel: str | None = None,
    ) -> Json:
        key = _limit_key(method, channel)
        self._hold(key)
        try:
            async with asyncio.timeout(self.per_call * calls):
                response = await retry_call(
                    call,
                    self.backoff,
                    retryable=self._short_wait,
                    asked=self._asked,
                    sleep=self.sleep,
                )
        except SlackApiError as exc:
            error = _mapped(method, exc, self.clock())
            if error.retry_after:
                self.held_until[key] = self.clock() + timedelta(seconds=error.retry_after)
            self._note_auth(error)
            raise error from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SlackDeliveryError(method, type(exc).__name__) from exc
        self.auth_failing = False
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _note_auth(self, error: SlackDeliveryError) -> None:
        """A refused token is the operator's to fix: say it once, loudly, not per delivery."""
        if not error.auth_failed or self.auth_failing:
            return
        self.auth_failing = True
        log.error(
            "the bot token is invalid or revoked: Slack answered %s to %s; nothing reaches "
            "Slack until BREAKGLASS_SLACK_BOT_TOKEN holds a valid token (then restart)",
            error.code,
            error.method,
        )

    async def post(
        self, channel: str, message: Mapping[str, Any], thread_ts: str | None = None
    ) -> Json:
        """chat.postMessage (chat:write); links and media never unfurl."""
        call = partial(
            self.client.chat_postMessage,
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **dict(message),
        )
        return await self._call("chat.postMessage", call, channel=channel)

    async def update(self, channel: str, ts: str, message: Mapping[str, Any]) -> Json:
        call = partial(self.client.chat_update, channel=channel, ts=ts, **dict(message))
        return await self._call("chat.update", call)

    async def ephemeral(
        self, channel: str, user: str, text: str, blocks: Sequence[Any] | None = None
    ) -> Json:
        call = partial(
            self.client.chat_postEphemeral, channel=channel, user=user, text=text, blocks=blocks
        )
        return await self._call("chat.postEphemeral", call)

    async def open_dm(self, user: str) -> str:
        """conversations.open (im:write): the DM channel with ``user``."""
        call = partial(self.client.conversations_open, users=user)
        body = await self._call("conversations.open", call)
        channel = body.get("channel")
        if not isinstance(channel, Mapping) or not isinstance(channel.get("id"), str):
            raise SlackDeliveryError("conversations.open", "no_channel_in_answer")
        return str(channel["id"])

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> Json:
        call = partial(self.client.views_open, trigger_id=trigger_id, view=dict(view))
        return await self._call("views.open", call)

    async def upload(
        self, channel: str, thread_ts: str, filename: str, content: bytes, comment: str
    ) -> Json:
        """files.upload v2 (files:write): get an upload URL, send the bytes, complete."""
        call = partial(
            self.client.files_upload_v2,
            channel=channel,
            thread_ts=thread_ts,
            filename=filename,
            title=filename,
            content=content,
            initial_comment=comment,
        )
        return await self._call("files.upload", call, calls=3)
