"""Reading an OpenAI-compatible stream for its receipt: every framing the WHATWG HTML
"Server-sent events" parsing rules allow, and what OpenAI documents of a stream's usage
(docs/model.md cites both)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.llm.sse import Event, comments, data_events, ends_event, events, summarize
from adapters.llm.usage import MAX_COUNT, reported, usage_of

USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


def chunk(content: str = "hi", **extra: Any) -> dict[str, Any]:
    delta = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [delta], **extra}


def last(**extra: Any) -> dict[str, Any]:
    """The extra chunk include_usage asks for: no choices, the counts."""
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [], **extra}


def sse(*values: Any, nl: str = "\n", field: str = "data: ", done: bool = True) -> bytes:
    text = "".join(f"{field}{json.dumps(v)}{nl}{nl}" for v in values)
    return (text + (f"{field}[DONE]{nl}{nl}" if done else "")).encode()


def stream_usage(stream: bytes) -> tuple[int, int] | None:
    return reported(summarize(stream).answers)


# ------------------------------------------------------------------ framing


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("field", ["data: ", "data:"])
def test_every_line_end_and_both_data_spellings_are_read(nl: str, field: str) -> None:
    stream = sse(chunk(usage=None), last(usage=USAGE), nl=nl, field=field)
    summary = summarize(stream)
    assert (summary.done, summary.error) == (True, False)
    assert stream_usage(stream) == (11, 3)


def test_keep_alive_comments_are_skipped() -> None:
    keepalive = b": OPENROUTER PROCESSING\n\n"
    stream = keepalive + sse(chunk(), last(usage=USAGE)).replace(b"\n\ndata", b"\n\n:\n\ndata")
    assert [e.type for e in events(keepalive + stream)] == ["message"] * 3
    assert stream_usage(keepalive + stream) == (11, 3)


def test_data_lines_of_one_event_are_joined_with_line_feeds() -> None:
    usage_chunk = json.dumps(last(usage=USAGE), indent=1)  # JSON on many lines
    stream = "".join(f"data: {line}\n" for line in usage_chunk.splitlines()) + "\n"
    stream += "data: [DONE]\n\n"
    assert stream_usage(stream.encode()) == (11, 3)


def test_only_cr_lf_and_crlf_end_a_line() -> None:
    # JSON allows these raw in a string; str.splitlines() would break the event at them.
    text = "a\u2028b\x85c\u2029d"
    stream = sse(chunk(text, usage=USAGE)).replace(json.dumps(text).encode(), f'"{text}"'.encode())
    assert next(data_events(stream))["choices"][0]["delta"]["content"] == text
    assert stream_usage(stream) == (11, 3)


def test_event_and_other_fields_and_a_bom() -> None:
    stream = b'\xef\xbb\xbfid: 1\nretry: 10\nevent: error\ndata: {"error": {}}\n\n'
    assert list(events(stream)) == [Event("error", '{"error": {}}')]


def test_an_event_the_stream_ended_before_its_blank_line_is_discarded() -> None:
    # A client never dispatches it: its usage is not the client's either.
    stream = sse(chunk(), done=False) + b"data: " + json.dumps(last(usage=USAGE)).encode() + b"\n"
    assert stream_usage(stream) is None
    cut_mid_line = sse(chunk(), done=False) + b'data: {"choices": [], "usage": {"prompt_'
    assert stream_usage(cut_mid_line) is None
    assert not summarize(cut_mid_line).done


def test_done_is_the_documented_end() -> None:
    assert summarize(sse(chunk())).done
    assert not summarize(sse(chunk(), done=False)).done
    assert summarize(sse(chunk(), done=False) + b"data: [DONE]\n").done  # a whole line
    assert summarize(sse(chunk(), done=False) + b"data:[DONE]").done is False  # cut


@pytest.mark.parametrize(
    "error",
    [
        b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n',
        b'event: error\ndata: {"message": "overloaded", "code": "server_error"}\n\n',
    ],
)
def test_an_error_event_mid_stream_is_seen(error: bytes) -> None:
    summary = summarize(sse(chunk(), done=False) + error)
    assert (summary.done, summary.error) == (False, True)


def test_comment_lines_are_read_by_the_same_line_ends() -> None:
    # The proxy's receipt is such a comment, after an upstream that ended its lines in CR.
    stream = b"\xef\xbb\xbf: keep-alive\r\r" + sse(chunk(), nl="\r") + b':receipt {"a":1}\n\n: cut'
    assert comments(stream) == ["keep-alive", 'receipt {"a":1}']  # a line cut off is none
    assert comments(b"data: :x\n\n") == []


def test_where_an_event_ends() -> None:
    assert ends_event(b"")
    assert all(ends_event(b"data: x" + end) for end in (b"\n\n", b"\r\r", b"\r\n\r\n"))
    assert not any(ends_event(b"data: x" + end) for end in (b"", b"\n", b"\r", b"\r\n"))


# ------------------------------------------------------------------ usage


def test_usage_is_taken_from_the_last_chunk_that_reports_it() -> None:
    stream = sse(chunk(usage=None), chunk(usage=None), last(usage=USAGE))
    assert stream_usage(stream) == (11, 3)
    assert usage_of(stream, stream=True) == (11, 3)


def test_absent_usage_is_unreported_not_zero() -> None:
    assert stream_usage(sse(chunk(), chunk())) is None
    assert stream_usage(sse(chunk(usage=None))) is None
    assert reported([{"usage": {"prompt_tokens": 0, "completion_tokens": 0}}]) == (0, 0)
    assert usage_of(sse(chunk()), stream=True) == (0, 0)  # what the receipt records then


@pytest.mark.parametrize(
    "counts",
    [
        {"prompt_tokens": MAX_COUNT + 1, "completion_tokens": 1},  # beyond canonical JSON
        {"prompt_tokens": -1, "completion_tokens": 1},
        {"prompt_tokens": 1.5, "completion_tokens": 1},
        {"prompt_tokens": True, "completion_tokens": 1},
        {"prompt_tokens": 1},
    ],
)
def test_counts_a_receipt_cannot_hold_are_unreported(counts: dict[str, Any]) -> None:
    assert reported([{"usage": counts}]) is None


def test_json_nested_too_deep_is_junk_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert usage_of(deep, stream=False) == (0, 0)
    stream = b"data: " + deep + b"\n\n" + sse(last(usage=USAGE))
    assert stream_usage(stream) == (11, 3)
    assert list(data_events(b"data: " + deep + b"\n\n")) == []
