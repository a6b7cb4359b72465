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
