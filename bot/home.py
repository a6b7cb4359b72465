"""Where the bot keeps its files: ``$BREAKGLASS_HOME`` and ``$BREAKGLASS_DATABASE_URL``
(or ``_FILE``), for the commands that need no more than that (keys, tokens, reports).

Read with the service's own environment rules (:mod:`bot.config_env`); everything below
``bot/`` is handed these values.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.store import sqlite_url
from adapters.store.connect import parse_url
from bot.config_env import read_environment
from engine.errors import ConfigError

DEFAULT_HOME = Path(".breakglass")
HOME_VAR = "BREAKGLASS_HOME"
DATABASE_VAR = "BREAKGLASS_DATABASE_URL"
_HOME_VARS = (HOME_VAR, DATABASE_VAR)  # and DATABASE_VAR + "_FILE"


@dataclass(frozen=True)
class Home:
    """The home directory and the database URL (SQLite under the home unless set)."""

    root: Path
    database_url: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Home:
        # An empty variable counts as unset: `BREAKGLASS_HOME= cmd` must not mean "/".
        values = read_environment({k: v for k, v in environ.items() if k.startswith(_HOME_VARS)})
        if values.problems:
            raise ConfigError(values.problems[0])
        root = Path(values.document.get("home") or DEFAULT_HOME)
        url = values.document.get("database", {}).get("url") or sqlite_url(root)
        return cls(root=root, database_url=url)

    def ensure_root(self) -> None:
        """Create the home (owner-only) so the default SQLite file has somewhere to live."""
        private_dir(self.root, "the home")

    def require_database(self) -> None:
        """For a read-only command: a SQLite file that is not there is an error, never created
        (opening it would make an empty store, and the home, to answer a question)."""
        url = parse_url(self.database_url)
        if url.get_backend_name() != "sqlite" or url.database is None:
            return  # a server database: nothing to create by reading it
        path = Path(url.database)
        if path_stat(path, "the database") is None:
            raise ConfigError(
                f"no database at {path}: nothing is recorded there (see {HOME_VAR}, {DATABASE_VAR})"
            )


def os_reason(exc: OSError) -> str:
    """The reason of an OS error as people read it ("Not a directory")."""
    return exc.strerror or type(exc).__name__


def path_stat(path: Path, what: str) -> os.stat_result | None:
    """``path``'s status, or None when nothing is there; any other failure (a file where a
    directory should be, no permission) is a ConfigError naming the path and the reason."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot use {what} {path}: {os_reason(exc)}") from None


def existing_dir(path: Path, what: str) -> bool:
    """Is ``path`` a directory (False: nothing is there)? Anything else is a ConfigError."""
    info = path_stat(path, what)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {path} is not a directory")
    return info is not None


def private_dir(path: Path, what: str) -> None:
    """Make sure ``path`` is a directory; one we create is owner-only (its parents are not ours
    to restrict). A path that cannot be one is a ConfigError naming it and why."""
    if existing_dir(path, what):
        return
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {os_reason(exc)}") from None
