"""A platform-neutral card: the few shapes every moment is drawn with.

``cards.moments`` turns a view into a :class:`Card`; ``cards.teams`` and ``cards.slack`` draw a
card for their platform. Text here is already cleaned (``cards.text.clean_*``) but NOT escaped:
each renderer escapes every string it writes, ours and the user's alike, so no text can reach
a platform's markup unescaped by being mislabelled "trusted".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cards.actions import CardAction


class Tone(StrEnum):
    NORMAL = "normal"
    GOOD = "good"
    WARNING = "warning"
    DANGER = "danger"


class ButtonStyle(StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


@dataclass(frozen=True)
class Fact:
    """``label``: ``value``; ``mono`` for hashes and commands, ``multiline`` keeps line breaks."""

    label: str
    value: str
    mono: bool = False
    multiline: bool = False


@dataclass(frozen=True)
class Facts:
    items: tuple[Fact, ...]


@dataclass(frozen=True)
class Banner:
    """A loud line at the top: simulated tenant, rollback failed."""

    text: str
    tone: Tone


@dataclass(frozen=True)
class Bullets:
    """A titled list (rollback plan, what ran, what is still privileged)."""

    title: str
    items: tuple[str, ...]
    tone: Tone = Tone.NORMAL


@dataclass(frozen=True)
class Note:
    text: str
    mono: bool = False


Part = Banner | Facts | Bullets | Note


@dataclass(frozen=True)
class Button:
    label: str
    action: CardAction
    style: ButtonStyle = ButtonStyle.DEFAULT
    confirm: str | None = None  # asked before the press counts, where the platform can


@dataclass(frozen=True)
class Link:
    """A button that opens ``url`` in the browser (no callback to us)."""

    label: str
    url: str


@dataclass(frozen=True)
class Card:
    """One moment, drawn. ``summary`` is the notification / fallback text (our words only)."""

    summary: str
    parts: tuple[Part, ...]
    title: str | None = None
    buttons: tuple[Button, ...] = ()
    links: tuple[Link, ...] = ()
