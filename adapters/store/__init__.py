"""The durable store: the engine's ``Store`` port over SQLite (default) or PostgreSQL.

``SqlStore.open(url)`` connects and migrates; ``sqlite_url(home)`` names the default file.
The caller reads the environment; this package never does.
"""

from adapters.store.connect import sqlite_url
from adapters.store.store import SqlStore

__all__ = ["SqlStore", "sqlite_url"]
