"""Receipt signatures of a large bundle, checked by a helper process while this one checks
everything else.

Ed25519 verification is most of what a large bundle costs. A thread cannot take it off this
process's hands: the checks here hold the GIL, so a verifying thread would wait for it
between every two signatures. A helper process has a GIL of its own. It works through the
signatures from the first chunk on; once the other checks are done, this process takes
chunks from the last one back until the two meet, so neither waits for the other.

``verify_bundle`` first checks the bundle as if every submitted signature were good, and
keeps that report when the helper and this process find none bad. Otherwise it checks the
bundle again with only the good ones skipped, so a forged bundle gets the sequential
verifier's reason codes, in the same order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import _cffi_backend  # type: ignore[import-untyped]  # PyNaCl's runtime: the helper's path
import nacl
import orjson
import rfc8785

from engine.did import verify_signature
from engine.encoding import b64u_decode
from engine.errors import InputError, VerificationError

Signed = tuple[str, str, str]  # signer DID, payload hash (the signed text), signature
PARALLEL_FROM = 1024  # fewer signatures verify faster than a helper process starts
CHUNK = 256  # signatures per unit of work: the most the two sides can both do
_HELPER = "import sys; sys.path[:0] = sys.argv[1:]; import engine.verify.signatures as s; s.serve()"


def signed_of(envelopes: Iterable[object]) -> list[Signed]:
    """The (DID, payload hash, signature) of each envelope that carries all three as text."""
    return [s for envelope in envelopes if (s := _signed(envelope)) is not None]


def bad_signatures(signed: Sequence[Signed]) -> set[Signed]:
    """Those of ``signed`` whose signature does not verify (one core, this process)."""
    bad = set()
    for item in signed:
        did, digest, signature = item
        try:
            verify_signature(did, digest.encode("utf-8"), b64u_decode(signature))
        except (InputError, VerificationError):
            bad.add(item)
    return bad


class SignatureCheck:
    """Signatures being verified by a helper process; :meth:`bad` finishes the work here."""

    def __init__(self, signed: Sequence[Signed]) -> None:
        self.signed = frozenset(signed)
        self._chunks = [signed[i : i + CHUNK] for i in range(0, len(signed), CHUNK)]
        self._done: dict[int, list[int]] = {}  # chunk -> positions of bad ones, by the helper
        self._lock = threading.Lock()
        # The work goes through a file, not a pipe: a thread feeding a pipe would wait for
        # this process's GIL between writes, and the helper for it.
        with tempfile.TemporaryFile() as work:
            for index, chunk in enumerate(self._chunks):
                work.write(json.dumps([index, chunk]).encode("ascii") + b"\n")
            work.seek(0)
            self._helper = _start_helper(work)
        self._reader = threading.Thread(target=self._receive, daemon=True, name="verify")
        self._reader.start()

    def bad(self) -> set[Signed]:
        """Every submitted signature that does not verify. Takes the chunks the helper has
        not reported, last first; the helper is stopped when the two meet (or it died)."""
        bad: set[Signed] = set()
        try:
            for index in reversed(range(len(self._chunks))):
                with self._lock:
                    reported = self._done.get(index)
                if reported is not None:  # the helper works in order: the rest are its too
                    break
                bad |= bad_signatures(self._chunks[index])
            with self._lock:
                done = dict(self._done)
            for index, positions in done.items():
                bad.update(self._chunks[index][p] for p in positions)
        finally:
            self.close()
        return bad

    def close(self) -> None:
        self._helper.kill()
        self._helper.wait()
        self._reader.join()
        if self._helper.stdout is not None:
            self._helper.stdout.close()

    def _receive(self) -> None:
        assert self._helper.stdout is not None
        for line in self._helper.stdout:
            try:
                index, positions = json.loads(line)
            except ValueError:
                return
            with self._lock:
                self._done[index] = positions


def start(envelopes: Iterable[object]) -> SignatureCheck | None:
    """A helper checking the envelopes' signatures, or None when checking them in turn is
    as quick (a small bundle, one CPU) or no helper can start."""
    signed = signed_of(envelopes)
    if len(signed) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return None
    try:
        return SignatureCheck(signed)
    except OSError:
        return None


def serve() -> None:
    """The helper: reads ``[chunk, [[did, hash, signature], ...]]`` lines, answers each with
    ``[chunk, [positions that do not verify]]``, until its input ends."""
    for line in sys.stdin.buffer:
        index, chunk = json.loads(line)
        bad = bad_signatures([tuple(item) for item in chunk])
        positions = [p for p, item in enumerate(chunk) if tuple(item) in bad]
        sys.stdout.write(json.dumps([index, positions]) + "\n")
        sys.stdout.flush()


def helper_command() -> list[str]:
    """The helper runs isolated and without site (no current directory, no PYTHON*
    variables, no .pth files: a verifier must not import a stranger's ``engine``), on the
    paths this project and the libraries it imports were loaded from. Skipping site also
    halves the helper's start."""
    root = Path(__file__).resolve().parents[2]
    packages = (nacl, orjson, rfc8785)  # rfc8785 and orjson: engine.canonical, via engine.verify
    libraries = {Path(str(p.__file__)).resolve().parents[1] for p in packages}
    libraries.add(Path(_cffi_backend.__file__).parent)
    return [sys.executable, "-I", "-S", "-c", _HELPER, *map(str, [root, *(libraries - {root})])]


def _start_helper(work: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own module, on paths we name
        helper_command(),
        stdin=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _signed(envelope: object) -> Signed | None:
    if not isinstance(envelope, Mapping):
        return None
    fields = tuple(envelope.get(k) for k in ("signer_did", "payload_hash_b64u", "signature_b64u"))
    if not all(isinstance(f, str) for f in fields):
        return None
    return fields  # type: ignore[return-value]
