"""Cards as plain text, for the local console's feed (and logs): one line per fact or item.

Text in a card is already cleaned (``cards.text.clean_*``); plain text needs no escaping, and
the console page shows it as text, never as markup.
"""

from __future__ import annotations

from cards.layout import Banner, Bullets, Card, Facts, Part, Tone


def _part(part: Part) -> list[str]:
    if isinstance(part, Banner):
        return [part.text.upper() if part.tone is Tone.DANGER else part.text]
    if isinstance(part, Facts):
        return [f"{fact.label}: {fact.value}" for fact in part.items]
    if isinstance(part, Bullets):
        return [f"{part.title}:", *(f"  • {line}" for line in part.items)]
    return [part.text]


def render(card: Card) -> str:
    lines = [card.title] if card.title else []
    for part in card.parts:
        lines.extend(_part(part))
    lines.extend(f"{link.label}: {link.url}" for link in card.links)
    return "\n".join(lines)
