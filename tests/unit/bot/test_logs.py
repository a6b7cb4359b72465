"""The JSON log formatter keeps tracebacks, drops only secret fields, and the level is set."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from bot import logs
from bot.logs import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord("breakglass.test", logging.ERROR, __file__, 1, "failed", (), None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_a_traceback_is_kept() -> None:
    try:
        {}["missing"]
    except KeyError:
        failing = record()
        failing.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(failing))
    assert line["error"] == "KeyError"
    assert "Traceback (most recent call last)" in line["exc"]
    assert "test_a_traceback_is_kept" in line["exc"]


def test_only_secret_fields_are_dropped() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(
                policy_key="kept",
                key_id="kept",
                idempotency_key="kept",
                client_secret="hunter2",
                api_key="hunter2",
                token="hunter2",
                bot_token="hunter2",
                app_password="hunter2",
            )
        )
    )
    assert (line["policy_key"], line["key_id"], line["idempotency_key"]) == ("kept",) * 3
    assert "hunter2" not in json.dumps(line)


@pytest.mark.parametrize(("name", "level"), [("debug", 10), ("warning", 30), ("error", 40)])
def test_the_level_is_configurable(name: str, level: int) -> None:
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    try:
        logs.configure(name)
        assert root.level == level
        assert logging.getLogger("alembic").level >= logging.WARNING
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_control_and_bidi_characters_a_peer_chose_are_escaped() -> None:
    hostile = "graph\u0000\u202e_read\u2066\x9b\u2028\ud800"
    made = logging.LogRecord("t", logging.WARNING, __file__, 1, "tool %s refused", (hostile,), None)
    made.tool = hostile
    raw = JsonFormatter().format(made)
    raw.encode()  # a lone surrogate would fail the write of the whole line
    assert not any(c in raw for c in "\u0000\u202e\u2066\x9b\u2028\ud800")
    line = json.loads(raw)
    escaped = r"graph\x00\u202e_read\u2066\x9b\u2028\ud800"
    assert line["msg"] == f"tool {escaped} refused"
    assert line["tool"] == escaped
    plain = "tool façade 名前 ✓ refused"  # printable text, accents and all, is left alone
    assert json.loads(JsonFormatter().format(record(msg_text=plain)))["msg_text"] == plain


def test_a_traceback_keeps_its_lines_but_not_a_bidi_override() -> None:
    try:
        raise ValueError("graph\u202e_read")  # str(), unlike repr(), leaves it raw
    except ValueError:
        failing = record()
        failing.exc_info = sys.exc_info()
    exc = json.loads(JsonFormatter().format(failing))["exc"]
    assert "\n" in exc
    assert "\u202e" not in exc
    assert r"graph\u202e_read" in exc
