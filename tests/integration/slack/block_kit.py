"""What Slack refuses in Block Kit, as the fake Slack checks it: the documented limits of the
blocks, elements and composition objects breakglass uses, and of the modal view.

Each problem is one string in Slack's own form, ``<what> [json-pointer:<where>]``, the way
Slack lists them in the ``errors`` (and ``response_metadata.messages``) of an
``invalid_blocks`` answer. Sources (docs/slack.md §5): the Block Kit reference pages of
docs.slack.dev (blocks, section, header, context, actions, input, button, static select,
plain-text and number inputs, the text, option and confirmation-dialog objects) and the modal
view reference. A block or element type breakglass never sends is refused as unknown: the
fake models the surface we use, and says so rather than waving the rest through.

Also the cumulative limit Slack does not document but enforces (``msg_blocks_too_long``):
reported refused at 11,341 characters of text in a message's blocks and accepted at 9,597
(slackapi/bolt-js issues 2509 and 2867). The fake refuses above :data:`BLOCKS_TEXT_LIMIT`,
between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

MESSAGE_BLOCKS = 50  # "up to 50 blocks in each message"
MODAL_BLOCKS = 100  # "and 100 blocks in modals"
TEXT_MAX = 3000  # a text object: "minimum length is 1 and maximum length is 3000"
ID_MAX = 255  # block_id, action_id, callback_id
BLOCKS_TEXT_LIMIT = 11_000  # msg_blocks_too_long, reported (see the module docstring)
MESSAGE_TEXT_LIMIT = 40_000  # the ``text`` field is truncated beyond (message_truncated)
VIEW_BYTES = 250_000  # views.open: view_too_large "greater than 250kb"

Json = Mapping[str, Any]
Check = Callable[[object, str], Iterator[str]]  # a part's problems, given it and where it is


def _at(where: str) -> str:
    return f" [json-pointer:{where}]"


def _text(obj: object, where: str, most: int = TEXT_MAX, plain: bool = False) -> Iterator[str]:
    """A text object: its type, and its text of 1 to ``most`` characters."""
    if not isinstance(obj, Mapping):
        yield "must be a text object" + _at(where)
        return
    kind = obj.get("type")
    if kind not in (("plain_text",) if plain else ("plain_text", "mrkdwn")):
        yield f"must be {'plain_text' if plain else 'a text object type'}" + _at(where + "/type")
    if kind == "mrkdwn" and "emoji" in obj:
        yield "emoji is only usable when type is plain_text" + _at(where + "/emoji")
    if kind == "plain_text" and "verbatim" in obj:
        yield "verbatim is only usable when type is mrkdwn" + _at(where + "/verbatim")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        yield "must be more than 0 characters" + _at(where + "/text")
    elif len(text) > most:
        yield f"must be less than {most + 1} characters" + _at(where + "/text")


def _string(doc: Json, key: str, where: str, most: int, required: bool = False) -> Iterator[str]:
    value = doc.get(key)
    if value is None:
        if required:
            yield "missing required field: " + key + _at(where)
        return
    if not isinstance(value, str) or not value:
        yield "must be a non-empty string" + _at(f"{where}/{key}")
    elif len(value) > most:
        yield f"must be less than {most + 1} characters" + _at(f"{where}/{key}")


def _confirm(obj: object, where: str) -> Iterator[str]:
    if not isinstance(obj, Mapping):
        yield "must be a confirmation dialog object" + _at(where)
        return
    yield from _text(obj.get("title"), where + "/title", 100, plain=True)
    yield from _text(obj.get("text"), where + "/text", 300)
    yield from _text(obj.get("confirm"), where + "/confirm", 30, plain=True)
    yield from _text(obj.get("deny"), where + "/deny", 30, plain=True)
    if obj.get("style") not in (None, "primary", "danger"):
        yield "must be primary or danger" + _at(where + "/style")


def _button(el: Json, where: str) -> Iterator[str]:
    yield from _text(el.get("text"), where + "/text", 75, plain=True)
    yield from _string(el, "action_id", where, ID_MAX)
    yield from _string(el, "value", where, 2000)
    yield from _string(el, "url", where, 3000)
    if el.get("style") not in (None, "primary", "danger"):
        yield "must be primary or danger" + _at(where + "/style")
    if "confirm" in el:
        yield from _confirm(el["confirm"], where + "/confirm")


def _option(opt: object, where: str) -> Iterator[str]:
    if not isinstance(opt, Mapping):
        yield "must be an option object" + _at(where)
        return
    yield from _text(opt.get("text"), where + "/text", 75)
    yield from _string(opt, "value", where, 150, required=True)


def _static_select(el: Json, where: str) -> Iterator[str]:
    options = el.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= 100:
        yield "must provide between 1 and 100 options" + _at(where + "/options")
        options = options if isinstance(options, list) else []
    for i, opt in enumerate(options):
        yield from _option(opt, f"{where}/options/{i}")
    initial = el.get("initial_option")
    if initial is not None:
        yield from _option(initial, where + "/initial_option")
        if initial not in options:
            yield "initial_option must be one of options" + _at(where + "/initial_option")
    yield from _string(el, "action_id", where, ID_MAX)


def _plain_text_input(el: Json, where: str) -> Iterator[str]:
    most = el.get("max_length", TEXT_MAX)
    if not isinstance(most, int) or not 1 <= most <= TEXT_MAX:
        yield f"max_length must be 1 to {TEXT_MAX}" + _at(where + "/max_length")
        most = TEXT_MAX
    initial = el.get("initial_value")
    if initial is not None and (not isinstance(initial, str) or len(initial) > most):
        yield "initial_value must fit max_length" + _at(where + "/initial_value")
    yield from _string(el, "action_id", where, ID_MAX)


def _number_input(el: Json, where: str) -> Iterator[str]:
    if not isinstance(el.get("is_decimal_allowed"), bool):
        yield "missing required field: is_decimal_allowed" + _at(where)
    bounds: dict[str, float] = {}
    for key in ("initial_value", "min_value", "max_value"):
        raw = el.get(key)
        if raw is None:
            continue
        try:
            bounds[key] = float(str(raw))
        except ValueError:
            yield "must be a number" + _at(f"{where}/{key}")
    low, high = bounds.get("min_value"), bounds.get("max_value")
    if low is not None and high is not None and low > high:
        yield "min_value must not exceed max_value" + _at(where + "/min_value")
    initial = bounds.get("initial_value")
    below = initial is not None and low is not None and initial < low
    above = initial is not None and high is not None and initial > high
    if below or above:
        yield "initial_value must be within min_value and max_value" + _at(where + "/initial_value")
    yield from _string(el, "action_id", where, ID_MAX)


_ELEMENTS = {
    "button": _button,
    "static_select": _static_select,
    "plain_text_input": _plain_text_input,
    "number_input": _number_input,
}
_ACTION_ELEMENTS = {"button", "static_select"}
_INPUT_ELEMENTS = {"static_select", "plain_text_input", "number_input"}


def _element(el: object, where: str, allowed: set[str]) -> Iterator[str]:
    if not isinstance(el, Mapping) or el.get("type") not in allowed:
        yield "unsupported element type" + _at(where + "/type")
        return
    yield from _ELEMENTS[str(el["type"])](el, where)


def _section(block: Json, where: str) -> Iterator[str]:
    fields = block.get("fields")
    if "text" in block or fields is None:
        yield from _text(block.get("text"), where + "/text")
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            yield "must provide no more than 10 items" + _at(where + "/fields")
            fields = []
        for i, field in enumerate(fields):
            yield from _text(field, f"{where}/fields/{i}", 2000)
    if "accessory" in block:
        yield from _element(block["accessory"], where + "/accessory", _ACTION_ELEMENTS)


def _header(block: Json, where: str) -> Iterator[str]:
    yield from _text(block.get("text"), where + "/text", 150, plain=True)


def _elements(block: Json, where: str, most: int, each: Check) -> Iterator[str]:
    """A block's ``elements``: 1 to ``most`` of them, each checked by ``each``."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= most:
        yield f"must provide between 1 and {most} elements" + _at(where + "/elements")
        return
    for i, el in enumerate(elements):
        yield from each(el, f"{where}/elements/{i}")


def _context(block: Json, where: str) -> Iterator[str]:
    yield from _elements(block, where, 10, _text)


def _actions(block: Json, where: str) -> Iterator[str]:
    yield from _elements(block, where, 25, lambda el, at: _element(el, at, _ACTION_ELEMENTS))


def _input(block: Json, where: str) -> Iterator[str]:
    yield from _text(block.get("label"), where + "/label", 2000, plain=True)
    if "hint" in block:
        yield from _text(block["hint"], where + "/hint", 2000, plain=True)
    yield from _element(block.get("element"), where + "/element", _INPUT_ELEMENTS)


def _divider(block: Json, where: str) -> Iterator[str]:
    return iter(())


_BLOCKS = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "input": _input,
    "divider": _divider,
}
# Input blocks belong in modals; a message carrying one is refused (invalid_blocks).
_MESSAGE_BLOCKS = frozenset(_BLOCKS) - {"input"}


def block_problems(blocks: object, modal: bool = False, where: str = "/blocks") -> list[str]:
    """Every problem Slack names in ``blocks`` of a message (or, ``modal``, of a view)."""
    if not isinstance(blocks, list):
        return ["must be an array" + _at(where)]
    most = MODAL_BLOCKS if modal else MESSAGE_BLOCKS
    out = [] if len(blocks) <= most else [f"must provide no more than {most} items" + _at(where)]
    allowed = frozenset(_BLOCKS) if modal else _MESSAGE_BLOCKS
    for i, block in enumerate(blocks):
        at = f"{where}/{i}"
        if not isinstance(block, Mapping) or block.get("type") not in allowed:
            out.append("unsupported block type" + _at(at + "/type"))
            continue
        out.extend(_string(block, "block_id", at, ID_MAX))
        out.extend(_BLOCKS[str(block["type"])](block, at))
    return out


def view_problems(view: object) -> list[str]:
    """Every problem Slack names in a modal ``view`` (views.open, a ``response_action``)."""
    if not isinstance(view, Mapping) or view.get("type") != "modal":
        return ["must be a modal view" + _at("/view/type")]
    out = list(_text(view.get("title"), "/view/title", 24, plain=True))
    for key in ("submit", "close"):
        if key in view:
            out.extend(_text(view[key], f"/view/{key}", 24, plain=True))
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
    )
    if has_input and "submit" not in view:
        out.append("submit is required when an input block is within the blocks" + _at("/view"))
    out.extend(_string(view, "private_metadata", "/view", 3000))
    out.extend(_string(view, "callback_id", "/view", ID_MAX))
    out.extend(block_problems(blocks, modal=True, where="/view/blocks"))
    return out


def blocks_text(node: object) -> int:
    """The characters of text in ``node`` (every ``text`` string at any depth): what the
    cumulative limit counts."""
    if isinstance(node, Mapping):
        return sum(
            len(value) if key == "text" and isinstance(value, str) else blocks_text(value)
            for key, value in node.items()
        )
    if isinstance(node, list):
        return sum(blocks_text(item) for item in node)
    return 0
