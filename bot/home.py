"""Where the bot keeps its files: ``$BREAKGLASS_HOME`` and ``$BREAKGLASS_DATABASE_URL``.

The only place (with the service's settings) that reads the environment; everything below
``bot/`` is handed these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.store import sqlite_url

DEFAULT_HOME = Path(".breakglass")
HOME_VAR = "BREAKGLASS_HOME"
DATABASE_VAR = "BREAKGLASS_DATABASE_URL"


@dataclass(frozen=True)
class Home:
    """The home directory and the database URL (SQLite under the home unless set)."""

    root: Path
    database_url: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Home:
        # An empty variable counts as unset: `BREAKGLASS_HOME= cmd` must not mean "/".
        root = Path(environ.get(HOME_VAR) or DEFAULT_HOME)
        url = environ.get(DATABASE_VAR) or sqlite_url(root)
        return cls(root=root, database_url=url)

    def ensure_root(self) -> None:
        """Create the home (owner-only) so the default SQLite file has somewhere to live."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
