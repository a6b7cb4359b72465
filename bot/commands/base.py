"""What every command is made of: a ``Command`` record, the ``Context`` it runs in, and the
small helpers commands share (read a JSON file strictly, print JSON, open the store)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.store import SqlStore
from bot import keys
from bot.home import Home
from engine.canonical import strict_loads
from engine.errors import ConfigError, InputError, StoreError, describe
from engine.lifecycle import Keys
from engine.verify import Trust

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed, or the operation did
EXIT_UNUSABLE = 2  # bad usage, unusable input or configuration: nothing was checked

STDIN = "-"
MAX_DOCUMENT_BYTES = 1024 * 1024  # policies, envelopes, trust files (pretty-printed)
MAX_BUNDLE_BYTES = 32 * 1024 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Context:
    """Where a command runs: the home (keys, database) and the clock."""

    home: Home
    clock: Callable[[], datetime] = field(default=utc_now)

    def now(self) -> datetime:
        return self.clock()

    def keys(self) -> Keys:
        return keys.load_keys(self.home.root)


Runner = Callable[[argparse.Namespace, Context], Coroutine[Any, Any, int]]


def no_arguments(_parser: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True)
class Command:
    """One leaf command: ``path`` is its words (``("policy", "sign")``)."""

    path: tuple[str, ...]
    help: str
    run: Runner
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments


@dataclass(frozen=True)
class Group:
    """A word that only groups commands (``policy``), with its help line."""

    path: tuple[str, ...]
    help: str


def json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as JSON (``args.json``) instead of text for people."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def read_bytes(name: str, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of the file ``name`` (``-`` is stdin), so a caller can
    tell an over-long input; an unreadable file is an InputError."""
    try:
        if name == STDIN:
            return sys.stdin.buffer.read(max_bytes + 1)
        with Path(name).open("rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from None


def read_json(name: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Strictly parse the JSON file ``name`` (``-`` is stdin); any failure is an InputError."""
    raw = read_bytes(name, max_bytes)
    try:
        return strict_loads(raw, max_bytes=max_bytes)
    except InputError as err:
        raise type(err)(f"{name}: {err}") from None


def read_object(name: str, what: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Mapping[str, Any]:
    value = read_json(name, max_bytes)
    if not isinstance(value, Mapping):
        raise InputError(f"{name} is not a JSON object ({what} expected)")
    return value


def print_json(value: Any) -> None:
    # ASCII only: JSON escapes C0 controls, but C1 (U+009B is an escape sequence's start on
    # many terminals) and bidi controls from a bundle would reach the terminal raw.
    print(json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False))


def load_trust(name: str | None, ctx: Context) -> Trust:
    """Trust from ``--trust`` (ours or the reference allowlists), else the local keys'."""
    if name is None:
        return Trust.from_json(keys.trust_document(ctx.keys()))
    doc = read_object(name, "a trust file")
    try:
        return Trust.from_json(doc)
    except InputError as err:
        raise InputError(f"{name}: {err}") from None


@asynccontextmanager
async def open_store(ctx: Context, *, create: bool = True) -> AsyncIterator[SqlStore]:
    """The store; ``create=False`` for a read-only question: no home or SQLite file is made.

    A store that fails (not a database, unreachable, a full disk) is an unusable environment,
    a ConfigError (exit 2), never a command's "no" (exit 1)."""
    if create:
        ctx.home.ensure_root()
    else:
        ctx.home.require_database()
    try:
        store = await SqlStore.open(ctx.home.database_url)
        try:
            yield store
        finally:
            await store.close()
    except StoreError as err:
        raise ConfigError(f"cannot use the store: {describe(err)}") from err
