"""Redaction of configured secrets, and token counts read from answers."""

from __future__ import annotations

import json

from adapters.llm import format_event
from adapters.llm.usage import usage_of
from bot.redaction import placeholder, redact, secret_hash


def test_every_occurrence_in_every_string_is_replaced_and_counted() -> None:
    value = {"messages": [{"content": "a SECRET b SECRET"}, {"content": ["SECRET", 3]}]}
    cleaned, redaction = redact(value, ["SECRET", "absent"])
    assert "SECRET" not in json.dumps(cleaned)
    assert cleaned["messages"][1]["content"] == [placeholder("SECRET"), 3]
    assert redaction.count == 3
    assert redaction.hashes == (secret_hash("SECRET"),)


def test_a_secret_containing_another_is_replaced_whole() -> None:
    cleaned, redaction = redact("key=abc-LONG-xyz", ["LONG", "abc-LONG-xyz"])
    assert cleaned == "key=" + placeholder("abc-LONG-xyz")
    assert redaction.count == 1


def test_nothing_to_redact_is_recorded_as_zero() -> None:
    assert redact({"a": "b"}, [])[1].metadata() == {"redactions": 0, "redaction_hashes": []}


def test_usage_from_an_answer_and_from_a_stream() -> None:
    answer = json.dumps({"usage": {"prompt_tokens": 7, "completion_tokens": 2}}).encode()
    assert usage_of(answer, stream=False) == (7, 2)
    stream = format_event({"choices": []}) + format_event(
        {"usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    )
    assert usage_of(stream + b"data: [DONE]\n\n", stream=True) == (5, 1)
    assert usage_of(b"not json", stream=False) == (0, 0)
    assert usage_of(json.dumps({"usage": {"prompt_tokens": True}}).encode(), False) == (0, 0)
