"""Files the CLI writes for people (a report page, the demo's bundle): whole, or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from engine.errors import InputError


def write_replacing(path: Path, data: bytes) -> None:
    """Write beside ``path``, then rename over it: a failed write (a full disk, a file size
    limit) leaves the old file, never a truncated one. Raises the OSError as it came."""
    # Not with_name(): "." and "/" have no name, and must fail as OSErrors do.
    temporary = path.parent / f".{path.name or 'file'}.{secrets.token_hex(6)}.tmp"
    try:
        # Mode 0o666 less the umask, as a plain open() would give the file.
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def cannot_write(path: object, exc: OSError) -> InputError:
    """The one-line error for a write that failed (exit 2)."""
    return InputError(f"cannot write {path}: {exc.strerror or type(exc).__name__}")
