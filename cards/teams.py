"""Cards for Microsoft Teams: Adaptive Card 1.5 JSON with ``Action.Execute``.

Text from people only ever goes into ``TextRun`` inlines, which show markdown literally;
the one ``TextBlock`` (the heading) is markdown-escaped. No card carries ``msteams.entities``,
so nothing on a card can mention anyone. Each ``Action.Execute`` has an ``Action.Submit``
fallback carrying the same data (see ``cards.actions``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cards import forms, moments
from cards.actions import CardAction, Verb, to_teams
from cards.layout import Banner, Bullets, Button, ButtonStyle, Card, Facts, Link, Note, Part, Tone
from cards.text import clean_block, clean_line, strip_hidden, teams_markdown, truncate
from cards.views import (
    ApprovalView,
    ReceiptLineView,
    RequestFormView,
)
from engine.errors import TooLarge

Json = dict[str, Any]

VERSION = "1.5"
SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_CARD_BYTES = 28 * 1024  # Teams refuses bot messages above about 28 KB
MAX_REFRESH_USERS = 60  # Teams runs an automatic refresh for at most 60 user ids
HEADING_LIMIT = 200
RUN_LIMIT = 2000
SHRINK_LIMITS = (500, 200, 80, 40, 20, 10)

_COLORS = {Tone.GOOD: "good", Tone.WARNING: "warning", Tone.DANGER: "attention"}
_STYLES = {ButtonStyle.PRIMARY: "positive", ButtonStyle.DANGER: "destructive"}


class CardTooLarge(TooLarge):
    """A rendered card is above the platform's size limit."""


def _run(text: str, **style: Any) -> Json:
    return {"type": "TextRun", "text": truncate(text, RUN_LIMIT), **style}


def _rich(*runs: Json, spacing: str | None = None) -> Json:
    block: Json = {"type": "RichTextBlock", "inlines": list(runs)}
    if spacing is not None:
        block["spacing"] = spacing
    return block


def _tone(tone: Tone) -> dict[str, str]:
    return {"color": _COLORS[tone]} if tone in _COLORS else {}


def _heading(title: str) -> Json:
    text = teams_markdown(title, HEADING_LIMIT)
    return {"type": "TextBlock", "text": text, "size": "Large", "weight": "Bolder", "wrap": True}


def _banner(part: Banner) -> list[Json]:
    run = _run(part.text, weight="Bolder", size="Medium", **_tone(part.tone))
    style = _COLORS.get(part.tone, "emphasis")  # container styles share the color names
    return [{"type": "Container", "style": style, "items": [_rich(run)]}]


def _facts(part: Facts) -> list[Json]:
    blocks: list[Json] = []
    for fact in part.items:
        label = _run(f"{fact.label}: ", weight="Bolder")
        font = {"fontType": "Monospace"} if fact.mono else {}
        lines = fact.value.split("\n") if fact.multiline else [fact.value]
        blocks.append(_rich(label, _run(lines[0], **font), spacing="Small"))
        blocks.extend(_rich(_run(line, **font), spacing="None") for line in lines[1:])
    return blocks


def _bullets(part: Bullets) -> list[Json]:
    title = _rich(_run(part.title, weight="Bolder", **_tone(part.tone)), spacing="Medium")
    lines = [_rich(_run(f"• {line}", **_tone(part.tone)), spacing="None") for line in part.items]
    return [title, *lines]


def _note(part: Note) -> list[Json]:
    style = {"fontType": "Monospace", "size": "Small"} if part.mono else {"isSubtle": True}
    return [_rich(_run(part.text, **style), spacing="Medium")]


def _part(part: Part) -> list[Json]:
    if isinstance(part, Banner):
        return _banner(part)
    if isinstance(part, Facts):
        return _facts(part)
    if isinstance(part, Bullets):
        return _bullets(part)
    return _note(part)


def execute(title: str, action: CardAction, style: ButtonStyle = ButtonStyle.DEFAULT) -> Json:
    """An ``Action.Execute`` for ``action`` with an ``Action.Submit`` fallback (same data)."""
    verb, data = to_teams(action)
    look = {"style": _STYLES[style]} if style in _STYLES else {}
    fallback = {"type": "Action.Submit", "title": title, "data": data, **look}
    return {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": data,
        **look,
        "fallback": fallback,
    }


def _button(button: Button) -> Json:
    return execute(button.label, button.action, button.style)


def _link(link: Link) -> Json:
    return {"type": "Action.OpenUrl", "title": link.label, "url": link.url}


def _envelope(body: list[Json], actions: list[Json], summary: str) -> Json:
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA_URL,
        "version": VERSION,
        "fallbackText": clean_line(summary, 300),
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def size_of(card: Json) -> int:
    """Bytes as a bot sends it: ASCII-escaped JSON, the worst case for non-Latin text."""
    return len(json.dumps(card).encode())


def check_size(card: Json) -> Json:
    """``card`` itself, or :class:`CardTooLarge` when its JSON is above ``MAX_CARD_BYTES``."""
    size = size_of(card)
    if size > MAX_CARD_BYTES:
        raise CardTooLarge(f"Adaptive Card is {size} bytes, above {MAX_CARD_BYTES}")
    return card


def _shrink_runs(node: Any, limit: int) -> None:
    if isinstance(node, list):
        for item in node:
            _shrink_runs(item, limit)
    elif isinstance(node, dict):
        if node.get("type") == "TextRun":
            node["text"] = truncate(node["text"], limit)
        for value in node.values():
            _shrink_runs(value, limit)


def render(card: Card, refresh: Json | None = None) -> Json:
    """Draw a neutral card as an Adaptive Card; ``refresh`` is added as given.

    A card too large for Teams (long non-Latin text escapes to 6-12 bytes a character) is
    sent with shorter texts rather than not at all: a kill result must always get through.
    """
    body = [_heading(card.title)] if card.title else []
    for part in card.parts:
        body.extend(_part(part))
    actions = [*(_button(b) for b in card.buttons), *(_link(k) for k in card.links)]
    out = _envelope(body, actions, card.summary)
    if refresh is not None:
        out["refresh"] = refresh
    for limit in SHRINK_LIMITS:
        if size_of(out) <= MAX_CARD_BYTES:
            break
        _shrink_runs(out["body"], limit)
    return check_size(out)


def refresh_for(job_id: str, plan_hash: str, user_ids: Sequence[str]) -> Json | None:
    """The ``refresh`` that makes each designated approver's client fetch its own variant."""
    if not user_ids:
        return None
    _, data = to_teams(CardAction(Verb.REFRESH, job_id, plan_hash))
    action = {"type": "Action.Execute", "verb": Verb.REFRESH.value, "data": data}
    return {"action": action, "userIds": list(user_ids[:MAX_REFRESH_USERS])}


# --- the moments ----------------------------------------------------------------------------

moment = moments.Drawn(render)  # the moments Teams draws unchanged: moment.status(view, now)...

_READ_ONLY_NOTE = "Only the designated approvers see Approve and Deny; two distinct approvers, "
_READ_ONLY_NOTE += "neither the requester, are needed."


def approval_card(view: ApprovalView, *, for_approver: bool, viewer_approved: bool = False) -> Json:
    """The approval prompt; buttons only in the approver variant, both carry the refresh.
    The read-only variant offers anyone their own ("Show my options": approvers whose client
    missed the refresh), drawn with the card so that its size counts when it is shrunk."""
    if not for_approver:
        verbs: tuple[Verb, ...] = (Verb.REFRESH,)
        note = _READ_ONLY_NOTE
    elif viewer_approved:
        verbs, note = (Verb.WITHDRAW,), "You approved this request."
    else:
        verbs, note = (Verb.APPROVE, Verb.DENY), "You are a designated approver."
    refresh = refresh_for(view.job_id, view.plan_hash_b64u, view.approver_teams_ids)
    return render(moments.approval(view, verbs, note), refresh)


def receipt_card(view: ReceiptLineView) -> Json:
    return render(moments.receipt(view))


def receipts_card(views: Sequence[ReceiptLineView]) -> Json:
    """Every record of one receipts event in ONE card (bounded)."""
    return render(moments.receipts(views))


# --- the request form -----------------------------------------------------------------------


def _input_text(field: forms.Field, label: str, value: str, multiline: bool = False) -> Json:
    element: Json = {"type": "Input.Text", "id": field.value, "label": label}
    element["maxLength"] = forms.LIMITS[field]
    element |= {"isRequired": True, "errorMessage": f"{label} is required"}
    if multiline:
        element["isMultiline"] = True
    if value:
        element["value"] = strip_hidden(value)[: forms.LIMITS[field]]
    return element


def _template_input(view: RequestFormView, label: str) -> Json:
    choices = [{"title": forms.TEMPLATE_CHOICES[t], "value": t.value} for t in view.templates]
    chosen = view.values.template if view.values else view.templates[0]
    return {
        "type": "Input.ChoiceSet",
        "id": forms.Field.TEMPLATE.value,
        "label": label,
        "choices": choices,
        "value": chosen.value,
        "isRequired": True,
        "errorMessage": "Choose a template",
    }


def _duration_input(view: RequestFormView, label: str) -> Json:
    wanted = view.values.duration_minutes if view.values else 30
    least, most = forms.min_minutes(view), forms.max_minutes(view)
    return {
        "type": "Input.Number",
        "id": forms.Field.DURATION.value,
        "label": label,
        "min": least,
        "max": most,
        "value": max(min(wanted, most), least),
        "isRequired": True,
        "errorMessage": f"Enter {least} to {most} minutes",
    }


def request_form_card(view: RequestFormView) -> Json:
    """The request form; its submit sends ``forms.REQUEST_VERB`` with the inputs merged in."""
    body = [_heading("Break-glass request")]
    if view.error:
        body.extend(_banner(Banner(clean_block(view.error, 500), Tone.DANGER)))
    body.extend(forms.draw_form(view, _template_input, _duration_input, _input_text))
    data: Json = {**forms.FORM_MARKER, "context": view.context[: forms.CONTEXT_LIMIT]}
    title = "Review request"
    submit: Json = {"type": "Action.Submit", "title": title, "data": data, "style": "positive"}
    action: Json = {"type": "Action.Execute", "title": title, "verb": forms.REQUEST_VERB}
    action |= {"data": data, "style": "positive", "fallback": submit}
    return check_size(_envelope(body, [action], "Break-glass request form"))


def step_up_card(job_id: str, url: str) -> Json:
    """The approver's private answer: an ``Action.OpenUrl`` to the sign-in (the invoke
    response replaces the card for the person who clicked only)."""
    return render(moments.step_up_sign_in(job_id, url))
