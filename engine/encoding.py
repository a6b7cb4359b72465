"""base64url without padding and SHA-256 ids, as clawsig writes them (``*_b64u`` fields)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from engine.errors import InputError

_B64U = re.compile(r"^[A-Za-z0-9_-]*\Z")


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Decode unpadded base64url; padding, other alphabets or stray bits are an InputError."""
    if not isinstance(text, str) or not _B64U.match(text) or len(text) % 4 == 1:
        raise InputError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InputError("not unpadded base64url") from exc
    if b64u_encode(data) != text:  # non-canonical trailing bits
        raise InputError("non-canonical base64url")
    return data


def sha256_b64u(data: bytes) -> str:
    """SHA-256 of ``data`` as 43 characters of unpadded base64url."""
    return b64u_encode(hashlib.sha256(data).digest())


def is_hash_b64u(text: object) -> bool:
    return isinstance(text, str) and len(text) == 43 and bool(_B64U.match(text))
