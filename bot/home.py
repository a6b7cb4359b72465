"""Where the bot keeps its files: ``$BREAKGLASS_HOME`` and ``$BREAKGLASS_DATABASE_URL``
(or ``_FILE``), for the commands that need no more than that (keys, tokens, reports).

Read with the service's own environment rules (:mod:`bot.config_env`); everything below
``bot/`` is handed these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.store import sqlite_url
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
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
