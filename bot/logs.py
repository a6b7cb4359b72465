"""Structured JSON logs: one object per line, with the job id when a message names one.

Messages never carry secrets: tokens, keys and client secrets are not logged anywhere; this
formatter also drops any ``extra`` field named like a known secret (``client_secret``,
``api_key``, ``token``...), but keeps ``key``-ish names that are not secrets (``policy_key``).
Exceptions keep their traceback (``exc``), so a failure can be found from the log alone,
except a malformed request a peer sent (one WARNING line, see :class:`BadRequestFilter`).
Control and invisible characters (categories Cc, Cf, Zl, Zp, Cs: NUL, bidi overrides...) are
written as escapes (``\\u202e``), so text a peer chose cannot hide or reorder a line.
"""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from datetime import UTC, datetime

from aiohttp.http_exceptions import HttpProcessingError

# Exact names, and suffixes, of fields that hold secrets.
_SECRET_NAMES = frozenset(
    {"authorization", "password", "secret", "token", "api_key", "apikey", "private_key", "seed"}
)
_SECRET_SUFFIXES = ("_secret", "_password", "_token", "_api_key", "_private_key", "_seed")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS["error"] = logging.ERROR
QUIET = ("alembic", "aiohttp.access", "msal", "mcp")  # mcp: a line per MCP request
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def escape(text: str, keep: str = "") -> str:
    """``text`` with each control or invisible character (but those in ``keep``) escaped.

    json.dumps(ensure_ascii=False) leaves DEL, C1 controls and U+202E raw, and a lone
    surrogate would fail the write of the whole line.
    """
    if text.isprintable():  # the usual case: nothing to escape
        return text
    return "".join(
        c.encode("unicode_escape").decode() if c not in keep and _unsafe(c) else c for c in text
    )


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": escape(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not is_secret_field(name):
                plain = isinstance(value, int | float | bool)
                entry[name] = value if plain else escape(str(value))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["exc"] = escape(self.formatException(record.exc_info), keep="\n")
        return json.dumps(entry, ensure_ascii=False)


class BadRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR, with a traceback whose text holds up
    to 100 bytes of the offending line (a header may carry a token). That is the peer's fault,
    answered 400 already: one line with the kind of error and the peer is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "malformed HTTP request from %s: %s"
            record.args = (peer, type(exc).__name__)
            record.levelno = min(record.levelno, logging.WARNING)
            record.levelname = logging.getLevelName(record.levelno)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return record.levelno >= logging.getLogger(record.name).getEffectiveLevel()


_BAD_REQUESTS = BadRequestFilter()  # one instance: addFilter() does not add it twice


def configure(level: str | int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO) if isinstance(level, str) else level)
    for chatty in QUIET:  # their info lines say nothing an operator needs
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
    logging.getLogger("aiohttp.server").addFilter(_BAD_REQUESTS)  # both listeners log there
