"""Cards for Slack: Block Kit built from ``slack_sdk.models`` objects, so every block is
validated by the SDK when it is turned into JSON.

Every ``mrkdwn`` text is escaped (``cards.text.slack_mrkdwn``) and marked ``verbatim`` so Slack
neither links URLs nor parses mentions in it; headers and buttons carry only our own words.

Besides each block's own limits, Slack refuses a message whose blocks hold too much text in
all (``msg_blocks_too_long``): a limit it does not document, reported refused at 11,341
characters and taken at 9,597 (docs/slack.md §5). So a message keeps its blocks' text within
:data:`BLOCKS_TEXT_BUDGET`: free text (list items, notes, a justification) is cut first, in
the steps of :data:`ROOMS`, and names, ids and hashes only when that is not enough; every cut
ends in an ellipsis, and the audit log keeps everything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from cards import forms, layout, moments
from cards.actions import Verb, to_slack
from cards.layout import Banner, Bullets, Button, ButtonStyle, Card, Facts, Link, Note, Part, Tone
from cards.text import clean_block, clean_line, slack_code, slack_mrkdwn, strip_hidden, truncate
from cards.views import (
    ApprovalView,
    ReceiptLineView,
    RequestFormView,
)
from engine.errors import TooLarge

Json = dict[str, Any]

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
BUTTON_LIMIT = 75
CONFIRM_LIMIT = 300
TEXT_LIMIT = 300  # the notification text: our words and ids only
BLOCKS_TEXT_BUDGET = 9_000  # characters of text in all of a message's blocks (see above)
LINK_ACTION = "open_link"  # a link button's click: Slack opens the URL, we only acknowledge

_ICONS = {Tone.DANGER: ":rotating_light: ", Tone.WARNING: ":warning: ", Tone.GOOD: ""}
_STYLES = {ButtonStyle.PRIMARY: "primary", ButtonStyle.DANGER: "danger"}


class MessageTooLarge(TooLarge):
    """A rendered Slack message is above a Block Kit limit."""


@dataclass(frozen=True)
class Room:
    """The most characters one piece of a card's text may take once escaped."""

    free: int  # free text: a list item, a note, a multi-line fact (a justification, an error)
    fact: int  # a fact's value (names with ids, hashes), a banner


# Tried in turn until the message's blocks fit BLOCKS_TEXT_BUDGET: free text goes first.
ROOMS = (
    Room(SECTION_LIMIT, SECTION_LIMIT),  # as the section limit allows: most messages
    Room(1000, SECTION_LIMIT),
    Room(400, SECTION_LIMIT),
    Room(150, SECTION_LIMIT),
    Room(150, 600),
    Room(100, 300),
    Room(60, 160),
)


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text, verbatim=True)


def _fact_line(fact: layout.Fact, room: Room) -> str:
    label = f"*{slack_mrkdwn(fact.label, 80)}:*"
    limit = min(SECTION_LIMIT - len(label) - 1, room.free if fact.multiline else room.fact)
    if fact.mono:
        return f"{label} {slack_code(fact.value, limit)}"
    glue = "\n" if fact.multiline else " "
    return f"{label}{glue}{slack_mrkdwn(fact.value, limit)}"


def _sections(lines: list[str]) -> Iterator[SectionBlock]:
    """Pack lines into as few sections as fit the section text limit."""
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            yield SectionBlock(text=_mrkdwn(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        yield SectionBlock(text=_mrkdwn(chunk))


def _banner(part: Banner, room: Room = ROOMS[0]) -> list[Block]:
    icon = _ICONS.get(part.tone, "")
    text = slack_mrkdwn(part.text, min(2900, room.fact))
    return [SectionBlock(text=_mrkdwn(f"{icon}*{text}*"))]


def _bullets(part: Bullets, room: Room) -> list[Block]:
    icon = _ICONS.get(part.tone, "")
    title = f"{icon}*{slack_mrkdwn(part.title, 200)}*"
    limit = min(2900, room.free)
    return [*_sections([title, *(f"• {slack_mrkdwn(i, limit)}" for i in part.items)])]


def _note(part: Note, room: Room) -> list[Block]:
    limit = min(SECTION_LIMIT, room.free)
    text = slack_code(part.text, limit) if part.mono else slack_mrkdwn(part.text, limit)
    return [ContextBlock(elements=[_mrkdwn(text)])]


def _part(part: Part, room: Room) -> list[Block]:
    if isinstance(part, Banner):
        return _banner(part, room)
    if isinstance(part, Facts):
        return [*_sections([_fact_line(f, room) for f in part.items])]
    if isinstance(part, Bullets):
        return _bullets(part, room)
    return _note(part, room)


def _button(button: Button) -> ButtonElement:
    action_id, value = to_slack(button.action)
    confirm = None
    if button.confirm:
        confirm = ConfirmObject(
            title="Are you sure?",
            text=_mrkdwn(slack_mrkdwn(button.confirm, CONFIRM_LIMIT)),
            confirm=truncate(button.label, 30),
            deny="Cancel",
            style=_STYLES.get(button.style),
        )
    return ButtonElement(
        text=PlainTextObject(text=truncate(button.label, BUTTON_LIMIT), emoji=False),
        action_id=action_id,
        value=value,
        style=_STYLES.get(button.style),
        confirm=confirm,
    )


def _link(link: Link) -> ButtonElement:
    """A link button: Slack opens ``url`` and still sends a click, which we acknowledge only."""
    label = truncate(link.label, BUTTON_LIMIT)
    return ButtonElement(
        text=PlainTextObject(text=label, emoji=False), action_id=LINK_ACTION, url=link.url
    )


def blocks_of(card: Card, room: Room = ROOMS[0]) -> list[Block]:
    """The Block Kit blocks of a neutral card (not yet validated), each text within ``room``."""
    blocks: list[Block] = []
    if card.title:
        title = truncate(card.title, HEADER_LIMIT)
        blocks.append(HeaderBlock(text=PlainTextObject(text=title, emoji=False)))
    for part in card.parts:
        blocks.extend(_part(part, room))
    if card.buttons or card.links:
        elements = [*(_button(b) for b in card.buttons), *(_link(k) for k in card.links)]
        blocks.append(ActionsBlock(elements=elements))
    return blocks


def text_size(node: object) -> int:
    """Characters of text in ``node``: every ``text`` string at any depth, as Slack adds
    them up for ``msg_blocks_too_long``."""
    if isinstance(node, Mapping):
        return sum(
            len(value) if key == "text" and isinstance(value, str) else text_size(value)
            for key, value in node.items()
        )
    if isinstance(node, list):
        return sum(text_size(item) for item in node)
    return 0


def render(card: Card) -> Json:
    """A ``chat.postMessage`` / ``chat.update`` body: ``text`` and validated ``blocks``, at
    most :data:`MAX_BLOCKS` blocks holding at most :data:`BLOCKS_TEXT_BUDGET` characters of
    text (the first of :data:`ROOMS` that fits)."""
    text = slack_mrkdwn(clean_line(card.summary, TEXT_LIMIT), TEXT_LIMIT)
    size, count = 0, 0
    for room in ROOMS:
        blocks = blocks_of(card, room)
        count = len(blocks)
        if count > MAX_BLOCKS:
            continue
        drawn = [block.to_dict() for block in blocks]
        size = text_size(drawn)
        if size <= BLOCKS_TEXT_BUDGET:
            return {"text": text, "blocks": drawn}
    if count > MAX_BLOCKS:
        raise MessageTooLarge(f"{count} blocks, above {MAX_BLOCKS}")
    raise MessageTooLarge(f"{size} characters of text in blocks, above {BLOCKS_TEXT_BUDGET}")


# --- the moments ----------------------------------------------------------------------------

moment = moments.Drawn(render)  # the moments Slack draws unchanged: moment.status(view, now)...


def approval_message(view: ApprovalView) -> Json:
    """The approval prompt. Slack shows one message to all; the engine decides who may act."""
    verbs = (Verb.APPROVE, Verb.DENY) + ((Verb.WITHDRAW,) if view.approvals else ())
    note = "Only designated approvers can approve: two distinct people, neither the requester."
    return render(moments.approval(view, verbs, note))


def receipt_message(view: ReceiptLineView) -> Json:
    """One context line (no header) for the incident thread."""
    card = moments.receipt(view)
    return render(Card(card.summary, card.parts))


def receipts_message(views: Sequence[ReceiptLineView]) -> Json:
    """Every record of one receipts event in ONE thread message (no header, bounded)."""
    card = moments.receipts(views)
    return render(Card(card.summary, card.parts))


# --- the request modal ----------------------------------------------------------------------


def _text_input(field: forms.Field, label: str, value: str, multiline: bool = False) -> InputBlock:
    element = PlainTextInputElement(
        action_id=field.value,
        initial_value=strip_hidden(value)[: forms.LIMITS[field]] or None,
        multiline=multiline or None,
        max_length=forms.LIMITS[field],
    )
    return InputBlock(block_id=field.value, label=label, element=element)


def _template_input(view: RequestFormView, label: str) -> InputBlock:
    options = [Option(value=t.value, text=forms.TEMPLATE_CHOICES[t]) for t in view.templates]
    chosen = view.values.template if view.values else view.templates[0]
    initial = options[view.templates.index(chosen)] if chosen in view.templates else None
    F = forms.Field
    element = StaticSelectElement(
        action_id=F.TEMPLATE.value, options=options, initial_option=initial
    )
    return InputBlock(block_id=F.TEMPLATE.value, label=label, element=element)


def _duration_input(view: RequestFormView, label: str) -> InputBlock:
    wanted = view.values.duration_minutes if view.values else 30
    least, most = forms.min_minutes(view), forms.max_minutes(view)
    element = NumberInputElement(
        action_id=forms.Field.DURATION.value,
        is_decimal_allowed=False,
        initial_value=str(max(min(wanted, most), least)),
        min_value=str(least),
        max_value=str(most),
    )
    return InputBlock(block_id=forms.Field.DURATION.value, label=label, element=element)


def _form_blocks(view: RequestFormView) -> list[Block]:
    blocks: list[Block] = []
    if view.error:
        blocks.extend(_banner(Banner(clean_block(view.error, 500), Tone.DANGER)))
    return [*blocks, *forms.draw_form(view, _template_input, _duration_input, _text_input)]


def request_modal(view: RequestFormView) -> Json:
    """The ``views.open`` body of the request modal (callback ``forms.REQUEST_CALLBACK_ID``)."""
    modal = View(
        type="modal",
        callback_id=forms.REQUEST_CALLBACK_ID,
        title="Break-glass request",
        submit="Review request",
        close="Cancel",
        private_metadata=view.context[: forms.CONTEXT_LIMIT] or None,
        blocks=_form_blocks(view),
    )
    out: Json = modal.to_dict()
    return out


def step_up_message(job_id: str, url: str) -> Json:
    """The approver's private answer: a link button to the sign-in (ephemeral, never shared)."""
    return render(moments.step_up_sign_in(job_id, url))
