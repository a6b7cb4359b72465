"""Structured JSON logs: one object per line, with the job id when a message names one.

Messages never carry secrets: tokens, keys and client secrets are not logged anywhere;
this formatter also drops any ``extra`` field whose name suggests a secret.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_SECRETISH = ("token", "secret", "password", "key", "authorization")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not any(s in name.lower() for s in _SECRETISH):
                entry[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["error"] = f"{record.exc_info[0].__name__ if record.exc_info[0] else ''}"
        return json.dumps(entry, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
