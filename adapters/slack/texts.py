"""The texts and message shapes the Slack chat posts: warnings, escalations, the inline
bundle. Typed text is made inert (``inert``) everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.slack.config import USER_ID
from cards.text import clean_line, slack_mrkdwn
from engine.job import Job

Json = dict[str, Any]
INLINE_BUNDLE_LIMIT = 35_000  # below Slack's 40k message text limit


def text_message(text: str) -> Json:
    """A message of our own words (already escaped where they quote anything)."""
    return {"text": text}


def inert(text: str, limit: int = 300) -> str:
    return slack_mrkdwn(clean_line(text, limit), limit * 2)


def requester_user(job: Job) -> str | None:
    """The requester's Slack user id, when the job was requested in Slack."""
    platform, _, user = job.requester.chat_identity.partition(":")
    return user if platform == "slack" and USER_ID.fullmatch(user) else None


def requester_mention(job: Job) -> str:
    """``<@U…>`` for the requester: built from the verified id, never from typed text."""
    user = requester_user(job)
    return f"<@{user}> " if user is not None else ""


def warning_text(job: Job, minutes: int) -> str:
    return (
        f":warning: {requester_mention(job)}Break-glass job {inert(job.job_id)} ends in "
        f"{minutes} min. Then the access is rolled back; press *Kill now* on the card to "
        "end it sooner."
    )


def escalation_text(job_id: str, still: Sequence[str], refused: str = "") -> str:
    """``refused``: why the tenant last refused the rollback (code, AADSTS number, hint)."""
    items = "\n".join(f"• {inert(s, 500)}" for s in still) or "• (see the audit log)"
    why = f"\nThe tenant's last refusal: {inert(refused)}" if refused else ""
    return (
        f"<!here> :rotating_light: *ROLLBACK FAILED: access is STILL granted* "
        f"(job {inert(job_id)}). Remove it by hand now:\n{items}{why}"
    )


def inline_bundle(name: str, content: bytes) -> Json:
    text = content.decode()
    # Inline only when the bytes survive unchanged: no code fence breaker, within limits.
    if "`" in text or "&" in text or "<" in text or ">" in text or len(text) > INLINE_BUNDLE_LIMIT:
        return text_message(
            f"Files are not allowed here, and the bundle {inert(name)} cannot be shown inline; "
            "it is kept by the bot (see the audit summary for its hash)."
        )
    return text_message(f"Proof bundle {inert(name)} (files are not allowed here):\n```{text}```")
