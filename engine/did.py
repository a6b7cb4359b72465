"""Ed25519 keys named as ``did:key`` (multicodec 0xed01, base58btc), signing and verifying.

PyNaCl is the one signing library, for producing and for checking.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.signing

from engine.errors import VerificationError

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_ED25519_PREFIX = b"\xed\x01"
_DID_KEY = re.compile(r"^did:key:z[1-9A-HJ-NP-Za-km-z]{44,60}\Z")


def base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _ALPHABET[rem] + out
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + out


def base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _INDEX:
            raise ValueError("not base58")
        number = number * 58 + _INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading = len(text) - len(text.lstrip("1"))
    return b"\0" * leading + body


def did_from_public_key(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return "did:key:z" + base58_encode(_ED25519_PREFIX + public_key)


def public_key_from_did(did: object) -> bytes:
    """The 32-byte Ed25519 key named by ``did``. Cached: a bundle names the same few
    signers thousands of times."""
    if not isinstance(did, str):
        raise VerificationError("INVALID_DID_FORMAT", "not a did:key with a base58btc key")
    return _parse_did(did)


@functools.lru_cache(maxsize=256)
def _parse_did(did: str) -> bytes:
    """Raises VerificationError(INVALID_DID_FORMAT) for anything but a did:key of an Ed25519
    key that is a valid point of the prime-order subgroup (small-order keys are refused)."""
    if not _DID_KEY.match(did):
        raise VerificationError("INVALID_DID_FORMAT", "not a did:key with a base58btc key")
    try:
        raw = base58_decode(did[len("did:key:z") :])
    except ValueError as exc:
        raise VerificationError("INVALID_DID_FORMAT", "not base58btc") from exc
    if len(raw) != 34 or raw[:2] != _ED25519_PREFIX:
        raise VerificationError("INVALID_DID_FORMAT", "not an Ed25519 multicodec key")
    key = raw[2:]
    if did_from_public_key(key) != did:
        raise VerificationError("INVALID_DID_FORMAT", "non-canonical base58 encoding")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(key):
        raise VerificationError("INVALID_DID_FORMAT", "small-order or invalid Ed25519 key")
    return key


def verify_signature(did: str, message: bytes, signature: bytes) -> None:
    """Raise VerificationError(SIGNATURE_INVALID) unless ``did`` signed ``message``."""
    key = public_key_from_did(did)
    if len(signature) != 64:
        raise VerificationError("SIGNATURE_INVALID", "an Ed25519 signature has 64 bytes")
    try:
        _verify_key(key).verify(message, signature)
    except nacl.exceptions.BadSignatureError as exc:
        raise VerificationError("SIGNATURE_INVALID", "signature does not verify") from exc


@functools.lru_cache(maxsize=256)
def _verify_key(public_key: bytes) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(public_key)


@dataclass(frozen=True, repr=False)
class Signer:
    """An Ed25519 signing key and its DID. ``repr`` never shows the secret."""

    _key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> Signer:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    @functools.cached_property
    def did(self) -> str:  # cached: every receipt and token names its signer
        return did_from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def __repr__(self) -> str:
        return f"Signer({self.did})"
