"""A person's window-ending command the store refused, kept on this replica's own disk
(ADR 0021, amended at stop 34).

``bot.unrecorded`` keeps a Kill or a Done the store would not write, to record it first once
the store takes writes again. Memory alone loses it when the process dies during the outage,
and a restarted replica would then start the job's agent again for the rest of its window.
So it is also written here: one small JSON file under the service's home (one per replica
id, ``spool_in``), apart from the store (the store may be a PostgreSQL server whose disk is
full while ours is fine).

The file holds, per job, the command's kind and who gave it (the ``Actor``: chat identity,
directory principal, display name), nothing secret. It is replaced whole and atomically (a
temporary file in the same directory, fsync, ``os.replace``), mode 0600, and removed once
nothing is kept. A file that cannot be read or makes no sense is one ERROR and is ignored:
the service starts as it would without it. A write that fails is one ERROR too (until a
write succeeds again), and the command is kept in memory only, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.leases import default_replica_id
from engine.job import Actor
from engine.lifecycle import Done, Kill

log = logging.getLogger("breakglass.service")
VERSION = 1
Kept = Kill | Done  # the commands kept: a person's end of a window
KINDS: dict[str, type[Kept]] = {"kill": Kill, "done": Done}


def spool_in(home: Path, replica_id: str = "") -> Path:
    """The replica's file under ``home`` (``""``: the default replica id, as for leases).
    Replicas of one host may share a home; each keeps its own file, found again when it
    restarts under the same id."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", replica_id or default_replica_id())
    return home / f"kept-commands-{name}.json"


class KeptCommands:
    """The spool file at ``path``; None keeps nothing (every method does nothing)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._failing = False  # a write failed and was said: said again only after a success

    def load(self) -> dict[str, Kept]:
        """What a predecessor kept (job id → command); empty when nothing can be read."""
        if self.path is None:
            return {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            log.error("kept commands in %s cannot be read, ignored: %s", self.path, exc)
            return {}
        try:
            return decode(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            log.error("kept commands in %s make no sense, ignored: %s", self.path, exc)
            return {}

    def save(self, commands: Mapping[str, object]) -> None:
        """Keep ``commands`` (those of a kind kept here) in place of what the file held."""
        if self.path is None:
            return
        kept = encode(commands)
        try:
            if kept["commands"]:
                _replace(self.path, json.dumps(kept, indent=1, sort_keys=True) + "\n")
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        except OSError as exc:
            if not self._failing:
                log.error(
                    "kept commands cannot be written to %s (%s): they are kept in this "
                    "process only, and lost if it stops before the store takes writes",
                    self.path,
                    exc,
                )
            self._failing = True
            return
        self._failing = False


def encode(commands: Mapping[str, object]) -> dict[str, Any]:
    """The file's document: the commands of a kept kind, each its kind and its actor."""
    names: dict[type, str] = {kind: name for name, kind in KINDS.items()}
    kept = {
        job_id: {"kind": names[type(command)], "actor": _actor_json(command.actor)}
        for job_id, command in commands.items()
        if isinstance(command, Kill | Done) and type(command) in names
    }
    return {"version": VERSION, "commands": kept}


def decode(document: object) -> dict[str, Kept]:
    """The commands of a file's document; raises ValueError when it is not one."""
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise ValueError("not a version 1 document of kept commands")
    commands = document["commands"]
    if not isinstance(commands, dict):
        raise ValueError("its commands are not a mapping")
    found: dict[str, Kept] = {}
    for job_id, kept in commands.items():
        if not isinstance(kept, dict) or kept.get("kind") not in KINDS:
            raise ValueError(f"job {job_id!r}: not a kept Kill or Done")
        found[str(job_id)] = KINDS[kept["kind"]](_actor(kept["actor"]))
    return found


def _actor_json(actor: Actor) -> dict[str, Any]:
    return {
        "chat_identity": actor.chat_identity,
        "principal": actor.principal,
        "display": actor.display,
    }


def _actor(document: object) -> Actor:
    if not isinstance(document, dict):
        raise ValueError("an actor is not a mapping")
    identity, principal = document["chat_identity"], document.get("principal")
    display = document.get("display", "")
    if not isinstance(identity, str) or not identity or not isinstance(display, str):
        raise ValueError("an actor without a chat identity")
    if principal is not None and not isinstance(principal, str):
        raise ValueError("an actor's principal is not a string")
    return Actor(identity, principal, display)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (mode 0600), durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp: mode 0600
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """The rename itself survives a crash once its directory is synced (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse it; the rename is then as durable as they make it
    finally:
        os.close(fd)
