"""One set of keys per database: every replica signs a job's records with the same keys.

A job is started, run, rolled back and closed by whichever replica holds its lease, and its
bundle must verify with one trust file. A replica with keys of its own could not verify the
WPCs the others published (its rollback of their jobs was refused at every step), and what it
signed verified with no trust file. So the first replica to start records its public keys in
the store, and each later one must match them: otherwise it refuses to start.
"""

from __future__ import annotations

from bot.keys import trust_document
from engine.errors import ConfigError
from engine.lifecycle import Keys
from engine.ports import SnapshotStore

RECORD = "deployment:keys"


async def check_shared_keys(store: SnapshotStore, keys: Keys) -> None:
    """Record this replica's public keys, or refuse them when another replica's are recorded."""
    ours = trust_document(keys)
    # Read first: a restart writes nothing here, so a store refusing writes (a full disk)
    # does not stop the start that must end its open jobs' windows (DESIGN §10).
    recorded = await store.load_snapshot(RECORD) or await store.save_snapshot(RECORD, ours)
    if recorded == ours:
        return
    differing = [
        f"{field} {str(theirs)[:70]} (here {str(ours.get(field))[:70]})"
        for field, theirs in recorded.items()
        if ours.get(field) != theirs
    ]
    raise ConfigError(
        "keys: this database is used by replicas with other keys; every replica needs the "
        f"same keys directory (docs/operations.md). Recorded: {'; '.join(differing) or '?'}"
    )
