"""Signing keys on disk (``$BREAKGLASS_HOME/keys/<role>.key``, mode 0600) and the public
trust file verifiers take."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from bot.home import existing_dir, os_reason, path_stat, private_dir
from engine.canonical import strict_loads
from engine.did import Signer
from engine.encoding import b64u_decode, b64u_encode
from engine.errors import ConfigError, InputError
from engine.lifecycle import Keys

ROLES = ("publisher", "issuer", "agent", "gateway")
TRUST_FIELDS = {
    "registry_publisher_dids": "publisher",
    "token_issuer_dids": "issuer",
    "agent_dids": "agent",
    "gateway_receipt_signer_dids": "gateway",
}


# What to do with a key file that holds no key: nothing was signed with it, unless a job
# started before it was damaged.
_IF_UNUSED = "; if no job depends on it, delete it and run `breakglass keys init`"


def key_dir(home: Path) -> Path:
    return home / "keys"


def key_path(home: Path, role: str) -> Path:
    return key_dir(home) / f"{role}.key"


def init_keys(home: Path) -> tuple[Keys, frozenset[str]]:
    """Create any missing key (never overwriting one); return the keys and the roles created.

    Every key already there is checked first: a bad one stops us before anything is written.
    """
    present = _present_keys(home)
    private_dir(home, "the home")
    folder = key_dir(home)
    private_dir(folder, "the keys directory")
    try:
        folder.chmod(0o700)  # one made before, or by hand, is tightened too
    except OSError as exc:
        raise ConfigError(f"cannot chmod 700 {folder}: {os_reason(exc)}") from None
    missing = [role for role in ROLES if role not in present]
    for role in missing:
        _write_key(key_path(home, role), role, Signer.generate())
    return load_keys(home), frozenset(missing)


def _present_keys(home: Path) -> set[str]:
    """The roles whose key file is there, each loaded and checked (ConfigError if bad)."""
    check_dirs(home)
    present = set()
    for role in ROLES:
        path = key_path(home, role)
        if path_stat(path, "the key file") is not None:
            _load_key(path, role)
            present.add(role)
    return present


def check_dirs(home: Path) -> None:
    """The home and its keys directory are directories, or not there (yet); otherwise (a
    file there, or a path under a file) a ConfigError naming the path and why."""
    if existing_dir(home, "the home"):
        existing_dir(key_dir(home), "the keys directory")


def _write_key(path: Path, role: str, signer: Signer) -> None:
    """Write the whole key beside ``path``, then link it into place: a failed write (a full
    disk) leaves no key file, never an empty one, and an existing key is never replaced."""
    body = json.dumps({"role": role, "did": signer.did, "seed_b64u": b64u_encode(signer.seed)})
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_private(temporary, (body + "\n").encode())
        os.link(temporary, path)  # unlike os.replace, refuses (EEXIST) a key made meanwhile
        _sync_dir(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write key file {path}: {os_reason(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _write_private(path: Path, data: bytes) -> None:
    """``data`` in a new file, durably; O_EXCL + 0600 at creation: the secret is never
    readable by others, not even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_dir(folder: Path) -> None:
    """Make the new name durable too (a crash must not lose a key already handed out)."""
    with contextlib.suppress(OSError):  # best effort: not every system syncs a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_keys(home: Path) -> Keys:
    check_dirs(home)
    signers = {role: _load_key(key_path(home, role), role) for role in ROLES}
    return Keys(**signers)


def _load_key(path: Path, role: str) -> Signer:
    info = path_stat(path, "the key file")
    if info is None:
        raise ConfigError(f"missing key {path}; run `breakglass keys init`")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others; chmod 600 it")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {os_reason(exc)}") from None
    if not raw.strip():
        raise ConfigError(
            f"key file {path} is empty, not a breakglass key (a write that never finished)"
            f"{_IF_UNUSED}"
        )
    try:
        doc = strict_loads(raw)
    except (InputError, ValueError) as exc:
        raise ConfigError(
            f"key file {path} is not a breakglass key (truncated, or not JSON){_IF_UNUSED}"
        ) from exc
    try:
        signer = Signer.from_seed(b64u_decode(doc["seed_b64u"]))
    except (InputError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"key file {path} is not a breakglass key") from exc
    if doc.get("did") != signer.did or doc.get("role") != role:
        raise ConfigError(f"key file {path} does not match its DID or role")
    return signer


def trust_document(keys: Keys) -> dict[str, Any]:
    """The public trust file: the DIDs per role, nothing secret."""
    doc: dict[str, Any] = {"trust_version": "1"}
    for field, role in TRUST_FIELDS.items():
        doc[field] = [getattr(keys, role).did]
    return doc
