"""Receipt signatures checked ahead on every core: Ed25519 verification is most of what a
large bundle costs, and PyNaCl (libsodium through cffi) runs it without holding the GIL.

Only the signatures that verify are returned. ``verify_envelope`` skips the cryptography
for those and checks everything else in its usual order, so a bundle gets the same reason
codes, in the same order, as from the sequential verifier.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from engine.did import verify_signature
from engine.encoding import b64u_decode
from engine.errors import InputError, VerificationError

Signed = tuple[str, str, str]  # signer DID, payload hash (the signed text), signature
PARALLEL_FROM = 256  # fewer signatures verify faster than a pool starts
MAX_WORKERS = 8


def verified_ahead(envelopes: Iterable[object]) -> frozenset[Signed]:
    """The (DID, payload hash, signature) of each envelope whose signature verifies."""
    signed = [s for envelope in envelopes if (s := _signed(envelope)) is not None]
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers < 2 or len(signed) < PARALLEL_FROM:
        return frozenset()  # verify_envelope checks each one itself
    with ThreadPoolExecutor(workers, thread_name_prefix="verify") as pool:
        good = pool.map(_good, [signed[i::workers] for i in range(workers)])
        return frozenset().union(*good)


def _signed(envelope: object) -> Signed | None:
    if not isinstance(envelope, Mapping):
        return None
    fields = tuple(envelope.get(k) for k in ("signer_did", "payload_hash_b64u", "signature_b64u"))
    if not all(isinstance(f, str) for f in fields):
        return None
    return fields  # type: ignore[return-value]


def _good(batch: Sequence[Signed]) -> set[Signed]:
    out = set()
    for signed in batch:
        did, digest, signature = signed
        try:
            verify_signature(did, digest.encode("utf-8"), b64u_decode(signature))
        except (InputError, VerificationError):
            continue
        out.add(signed)
    return out
