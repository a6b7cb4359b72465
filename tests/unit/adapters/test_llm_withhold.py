"""Withholding our upstream key from an upstream's answer (adapters.llm.withhold): the whole
key anywhere, its starts and ends in an error answer, and a 401/403 message replaced."""

from __future__ import annotations

import json

import pytest

from adapters.llm.withhold import CREDENTIALS_REFUSED, MIN_SHOWN, withhold
from bot.scripted_refusals import invalid_api_key, masked_key, openai_error

KEY = "sk-Zq7XmLp9RtV4nZc8WfYh3JkDs6GaE1uTo5iNr0qPeUyB"
OTHER = "fal-2f9c1e7a:0b44d1c8a9e35f6d"


def parts(key: str) -> list[bytes]:
    """What must not show: the key, and its first and last MIN_SHOWN characters."""
    return [key.encode(), key[:MIN_SHOWN].encode(), key[-MIN_SHOWN:].encode()]


def shows(body: bytes, key: str = KEY) -> list[bytes]:
    return [part for part in parts(key) if part in body]


def test_openais_401_quotes_the_keys_start_and_end_and_our_message_replaces_it() -> None:
    refused = invalid_api_key(KEY)
    assert shows(refused.body) == parts(KEY)[1:]  # the scripted model quotes it as OpenAI does
    out = withhold(refused.body, 401, [KEY])
    assert out is not None
    error = json.loads(out)["error"]
    assert error == {
        "message": CREDENTIALS_REFUSED,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_that_is_not_json_is_masked(status: int) -> None:
    page = f"<p>Key {masked_key(KEY)} refused</p>".encode()
    assert (
        withhold(page, status, [KEY]) == b"<p>Key " + b"*" * len(KEY) + b" refused</p>"
    )  # masked in place


@pytest.mark.parametrize("status", [400, 404, 429, 500, 502, 503, 307])
def test_an_error_answer_keeps_its_text_but_not_the_key_or_its_ends(status: int) -> None:
    message = f"Bad key {KEY}; also {KEY[:9]}...{KEY[-5:]} and {OTHER}"
    body = openai_error(status, message, "server_error", "boom").body
    out = withhold(body, status, [KEY, OTHER])
    assert out is not None
    assert shows(out) == []
    assert shows(out, OTHER) == []
    error = json.loads(out)["error"]
    assert error["message"].startswith("Bad key ****")
    assert "; also *********...***** and " in error["message"]
    assert (error["type"], error["code"]) == ("server_error", "boom")


def test_a_2xx_answer_loses_the_whole_key_only() -> None:
    body = json.dumps({"content": f"{KEY} and {KEY[:6]} and {KEY[-4:]}"}).encode()
    out = withhold(bytearray(body), 200, [KEY])  # as the proxy holds it
    assert out is not None
    assert json.loads(out)["content"] == "*" * len(KEY) + f" and {KEY[:6]} and {KEY[-4:]}"


def test_a_refusal_without_our_key_still_gets_our_message() -> None:
    out = withhold(invalid_api_key("sk-someone-elses-key-entirely").body, 401, [KEY])
    assert out is not None
    assert json.loads(out)["error"]["message"] == CREDENTIALS_REFUSED


def test_nothing_changes_without_a_key_or_without_a_match() -> None:
    body = invalid_api_key(KEY).body
    assert withhold(body, 401, []) is None
    assert withhold(body, 401, [""]) is None
    assert withhold(b"all fine", 500, [KEY]) is None
    assert withhold(bytearray(b"all fine"), 200, [KEY]) is None
    assert withhold(b"", 401, [KEY]) is None


def test_a_short_key_is_masked_whole_and_overlapping_quotes_are_all_masked() -> None:
    assert withhold(b"key abc refused", 500, ["abc"]) == b"key *** refused"
    doubled = (KEY[:20] + KEY).encode()  # a start of the key runs into the whole key
    assert withhold(doubled, 500, [KEY]) == b"*" * len(doubled)
