"""``/breakglass <verb>`` and ``@breakglass <verb>``: parsing, and the replies that are only words.

Everything typed by a person that is echoed back passes ``cards.text`` first, so a reply can
never mention a channel, link somewhere or format text on someone's behalf.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cards import wording
from cards.actions import JOB_ID_PATTERN
from cards.text import clean_line, slack_mrkdwn
from cards.views import Template
from engine.job import ACTIVE, PENDING, ROLLING_BACK, Job
from engine.timeutil import parse_iso

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
ECHO_LIMIT = 60


class Verb(StrEnum):
    REQUEST = "request"
    STATUS = "status"
    KILL = "kill"
    HELP = "help"
    INVALID = "invalid"


@dataclass(frozen=True)
class Parsed:
    verb: Verb
    job_id: str | None = None  # kill's optional argument
    problem: str = ""  # why the text was not understood (for INVALID)


def strip_mentions(text: str) -> str:
    """The words of an app mention without the ``<@U…>`` tokens."""
    return _MENTION.sub(" ", text)


def parse(text: str) -> Parsed:
    words = text.split()
    if not words:
        return Parsed(Verb.HELP)
    head, rest = words[0].lower(), words[1:]
    if head in (Verb.REQUEST, Verb.STATUS, Verb.HELP):
        if rest:
            return Parsed(Verb.INVALID, problem=f"`{head}` takes no arguments")
        return Parsed(Verb(head))
    if head == Verb.KILL:
        return _kill(rest)
    return Parsed(Verb.INVALID, problem=f"unknown command {echo(words[0])}")


def _kill(rest: Sequence[str]) -> Parsed:
    if not rest:
        return Parsed(Verb.KILL)
    if len(rest) > 1 or not JOB_ID_PATTERN.fullmatch(rest[0]):
        return Parsed(Verb.INVALID, problem="`kill` takes at most one job id, like `bg-1a2b3c4d5e`")
    return Parsed(Verb.KILL, job_id=rest[0])


def echo(text: str) -> str:
    """A person's word, quoted inert."""
    return f"“{slack_mrkdwn(clean_line(text, ECHO_LIMIT), ECHO_LIMIT * 2)}”"


def help_text(command: str, problem: str = "") -> str:
    lead = f"Sorry, {problem}.\n" if problem else ""
    return (
        f"{lead}*Break-glass* commands (in an incident channel):\n"
        f"• `{command} request`: open the request form (two approvers, a hard time window)\n"
        f"• `{command} status`: open jobs, their state and time left\n"
        f"• `{command} kill [job id]`: stop a job now (without an id: this channel's one job)\n"
        f"• `{command} help`: this list\n"
        "You can also mention the bot: `@breakglass status`."
    )


NOT_AN_INCIDENT_CHANNEL = (
    "Break-glass works only in the configured incident channels; nothing was done."
)


def status_text(jobs: Sequence[Job], now: datetime, channel: str) -> str:
    if not jobs:
        return "No open break-glass jobs."
    lines = [_status_line(job, now, channel) for job in jobs[: wording.MAX_ITEMS]]
    more = len(jobs) - len(lines)
    tail = [f"… and {more} more"] if more > 0 else []
    return "\n".join([f"*Open break-glass jobs ({len(jobs)})*", *lines, *tail])


def _status_line(job: Job, now: datetime, channel: str) -> str:
    template = _template_title(str(job.request.get("template", "")))
    where = " (this channel)" if job.channel.get("channel") == channel else ""
    text = f"{job.job_id}: {job.state}, {template}, {_time_left(job, now)}{where}"
    return "• " + slack_mrkdwn(clean_line(text, 300), 600)


def _template_title(value: str) -> str:
    try:
        return wording.TEMPLATE_TITLES[Template(value)]
    except (KeyError, ValueError):
        return value


def _time_left(job: Job, now: datetime) -> str:
    if job.state == PENDING:
        left = wording.minutes_left(parse_iso(job.expires_at), now)
        return f"awaiting approval, request expires in {left} min"
    end = job.window_end_at()
    if job.state == ACTIVE and end is not None:
        return wording.countdown(end, now)
    if job.state == ROLLING_BACK:
        return "rolling back now"
    return "no window"


def killable(jobs: Sequence[Job], channel: str) -> list[Job]:
    """The jobs of ``channel`` that Kill would still stop (awaiting approval or active)."""
    return [j for j in jobs if j.channel.get("channel") == channel and j.state in (PENDING, ACTIVE)]


def echo_line(text: str) -> str:
    """A line of any origin (a refusal detail may quote a person), inert."""
    return slack_mrkdwn(clean_line(text, 300), 600)


def kill_which(candidates: Sequence[Job]) -> str:
    if not candidates:
        return "No job of this channel is awaiting approval or active; name one: `kill <job id>`."
    ids = ", ".join(echo_line(job.job_id) for job in candidates[: wording.MAX_ITEMS])
    return f"This channel has {len(candidates)} jobs ({ids}); name one: `kill <job id>`."


def not_this_channel(job_id: str) -> str:
    return (
        f":no_entry: Job {echo_line(job_id)} is not this channel's; nothing was done. Kill it "
        "in the channel where its status card is."
    )


def kill_started(job_id: str) -> str:
    return (
        f"Kill recorded for job {echo_line(job_id)}: its token is revoked and the rollback "
        "runs now; the status card shows the result."
    )
