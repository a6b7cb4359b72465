"""Structured JSON logs: one object per line, with the job id when a message names one.

Messages never carry secrets: tokens, keys and client secrets are not logged anywhere; this
formatter also drops any ``extra`` field named like a known secret (``client_secret``,
``api_key``, ``token``...), but keeps ``key``-ish names that are not secrets (``policy_key``).
Exceptions keep their traceback (``exc``), so a failure can be found from the log alone.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Exact names, and suffixes, of fields that hold secrets.
_SECRET_NAMES = frozenset(
    {"authorization", "password", "secret", "token", "api_key", "apikey", "private_key", "seed"}
)
_SECRET_SUFFIXES = ("_secret", "_password", "_token", "_api_key", "_private_key", "_seed")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS["error"] = logging.ERROR
QUIET = ("alembic", "aiohttp.access", "msal")


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not is_secret_field(name):
                entry[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str | int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO) if isinstance(level, str) else level)
    for chatty in QUIET:  # their info lines say nothing an operator needs
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
