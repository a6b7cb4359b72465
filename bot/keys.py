"""Signing keys on disk (``$BREAKGLASS_HOME/keys/<role>.key``, mode 0600) and the public
trust file verifiers take."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def key_dir(home: Path) -> Path:
    return home / "keys"


def init_keys(home: Path) -> tuple[Keys, bool]:
    """Create any missing key (never overwriting one); return the keys and whether any was new."""
    folder = key_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    created = False
    for role in ROLES:
        path = folder / f"{role}.key"
        if not path.exists():
            _write_key(path, role, Signer.generate())
            created = True
    return load_keys(home), created


def _write_key(path: Path, role: str, signer: Signer) -> None:
    body = json.dumps({"role": role, "did": signer.did, "seed_b64u": b64u_encode(signer.seed)})
    # O_EXCL + 0600 at creation: the secret is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body + "\n")


def load_keys(home: Path) -> Keys:
    signers = {role: _load_key(key_dir(home) / f"{role}.key", role) for role in ROLES}
    return Keys(**signers)


def _load_key(path: Path, role: str) -> Signer:
    if not path.exists():
        raise ConfigError(f"missing key {path}; run `breakglass keys init`")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others; chmod 600 it")
    try:
        doc = strict_loads(path.read_bytes())
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
