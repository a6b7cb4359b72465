"""Text from people, made inert before it is shown on a card.

Two layers. :func:`clean_line` / :func:`clean_block` apply to every platform: invisible and
control characters become visible ``[U+202E]`` markers (a reordered or hidden word on an
approval card is an attack the approver should see), whitespace is collapsed, URLs are
defanged so no platform turns them into links, and ``@word`` loses its mention power.
Then each platform escapes for its own syntax: :func:`slack_mrkdwn` for Slack ``mrkdwn``,
:func:`teams_markdown` for Adaptive Card ``TextBlock`` text (user text on Teams goes into
``TextRun``, which shows markdown literally).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

ELLIPSIS = "…"
MAX_LINES = 8

# Cc control, Cf format (bidi overrides, zero-width, tag characters), Cs/Co never shown.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_SPACES = re.compile(r"\s+")
_URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")
_WWW = re.compile(r"(?i)\bwww\.")
_MENTION = re.compile(r"(?<![\w.+-])@(?=\w)")
_FULLWIDTH_AT = "\uff20"  # looks like "@", pings nobody


def reveal_hidden(text: str, keep: str = "\n\t") -> str:
    """Replace each run of an invisible or control character by a visible marker (except
    those in ``keep``: pass ``""`` for a value that must stay on one line)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        j = i + 1
        if ch in keep or unicodedata.category(ch) not in _HIDDEN_CATEGORIES:
            out.append(ch)
        else:
            while j < len(text) and text[j] == ch:
                j += 1
            out.append(_marker(ch, j - i))
        i = j
    return "".join(out)


def strip_hidden(text: str) -> str:
    """``text`` without invisible and control characters (for values put back into inputs)."""
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in _HIDDEN_CATEGORIES
    )


def _marker(ch: str, count: int) -> str:
    code = f"U+{ord(ch):04X}"
    return f"[{code}]" if count == 1 else f"[{code}×{count}]"


def _defuse(line: str) -> str:
    line = _URL_SCHEME.sub(r"\1[:]", line)
    line = _WWW.sub(lambda m: m.group(0)[:3] + "[.]", line)
    return _MENTION.sub(_FULLWIDTH_AT, line)


def _bounded(text: str, limit: int) -> tuple[str, str]:
    # Work on a bounded prefix: cleaning a megabyte to show 300 characters wastes the bot's time.
    keep = limit * 8 + 64
    return (text[:keep], ELLIPSIS) if len(text) > keep else (text, "")


def clean_line(text: str, limit: int) -> str:
    """One line of inert text of at most ``limit`` characters (names, ids, tickets)."""
    text, more = _bounded(text, limit)
    flat = _SPACES.sub(" ", reveal_hidden(_LINE_BREAKS.sub("\n", text))).strip()
    return truncate(_defuse(flat) + more, limit)


def clean_block(text: str, limit: int, max_lines: int = MAX_LINES) -> str:
    """Inert multi-line text: blank lines dropped, at most ``max_lines`` lines, ``limit`` chars."""
    text, more = _bounded(text, limit)
    lines = [
        _SPACES.sub(" ", line).strip()
        for line in reveal_hidden(_LINE_BREAKS.sub("\n", text)).split("\n")
    ]
    lines = [line for line in lines if line]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return truncate(_defuse("\n".join(lines)) + more, limit)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


# --- Slack mrkdwn ---------------------------------------------------------------------------

_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Look-alikes: the reader sees the same character, Slack sees no formatting marker.
_SLACK_LOOKALIKES = {"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"}
_SLACK_MARKUP = re.compile(r"[*_~`]")
# ":name:" becomes an emoji (a fake ✅ next to "approved"); "17:30:00" must stay a time.
_SLACK_EMOJI = re.compile(r"(?<!\d):(?=[a-z0-9_+'-]*[a-z+][a-z0-9_+'-]*:)", re.IGNORECASE)
_SLACK_QUOTE = re.compile(r"^>", re.MULTILINE)


def _slack_markup(match: re.Match[str]) -> str:
    text, at = match.string, match.start()
    inside_word = 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum()
    return match.group(0) if inside_word else _SLACK_LOOKALIKES[match.group(0)]


def _slack_escape(text: str) -> str:
    text = _SLACK_QUOTE.sub("\u203a", text)
    text = _SLACK_EMOJI.sub("\ua789", text)
    return _slack_entities(_SLACK_MARKUP.sub(_slack_markup, text))


def slack_mrkdwn(text: str, limit: int) -> str:
    """Already-cleaned ``text`` escaped for Slack mrkdwn, at most ``limit`` characters."""
    return _fit(text, limit, _slack_escape)


def _slack_entities(text: str) -> str:
    return "".join(_SLACK_ENTITIES.get(ch, ch) for ch in text.replace("`", "\u02cb"))


def slack_code(text: str, limit: int) -> str:
    """``text`` as a Slack code span (hashes, commands): exact characters, no formatting."""
    return "`" + _fit(text, limit - 2, _slack_entities) + "`"


# --- Teams (Adaptive Card TextBlock markdown) ------------------------------------------------

_TEAMS_MARKDOWN = re.compile(r"([\\*_\[\]()`#>~|<])")
_TEAMS_LIST_START = re.compile(r"^([-+]|\d+(?=\.))", re.MULTILINE)


def _teams_escape(text: str) -> str:
    text = _TEAMS_MARKDOWN.sub(r"\\\1", text)
    return _TEAMS_LIST_START.sub(r"\\\1", text)


def teams_markdown(text: str, limit: int) -> str:
    """Already-cleaned ``text`` escaped for a ``TextBlock``, at most ``limit`` characters."""
    return _fit(text, limit, _teams_escape)


def _fit(text: str, limit: int, escape: Callable[[str], str]) -> str:
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    # Escaping lengthens text, so find the longest raw prefix whose escaped form fits.
    low, high = 0, min(len(text), limit)
    while low < high:
        mid = (low + high + 1) // 2
        if len(escape(text[:mid])) + len(ELLIPSIS) <= limit:
            low = mid
        else:
            high = mid - 1
    return escape(text[:low].rstrip()) + ELLIPSIS
