"""Where the CLI writes files: never over something that is not a regular file, never
half a file, never over a file it did not make."""

from __future__ import annotations

import errno
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.demo import write_outputs
from tests.corpus.generate import HERE as CORPUS
from tests.integration.cli.conftest import Cli, assert_one_line_error

TRUST = str(CORPUS / "trust.json")
BUNDLE = str(CORPUS / "good_agent.bundle.json")


# --------------------------------------------------------------- report -o


def a_fifo(folder: Path) -> tuple[Path, Callable[[], bool]]:
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    return fifo, fifo.is_fifo


def a_symlink(folder: Path) -> tuple[Path, Callable[[], bool]]:
    target = folder / "elsewhere.html"
    target.write_text("theirs")
    link = folder / "report.html"
    link.symlink_to(target)
    return link, lambda: link.is_symlink() and target.read_text() == "theirs"


@pytest.mark.parametrize("there", [a_fifo, a_symlink])
def test_report_never_replaces_what_is_not_a_regular_file(
    cli: Cli, tmp_path: Path, there: Callable[[Path], tuple[Path, Callable[[], bool]]]
) -> None:
    path, unchanged = there(tmp_path)
    result = cli("report", BUNDLE, "--trust", TRUST, "-o", str(path))
    assert_one_line_error(result, 2)
    assert str(path) in result.err
    assert unchanged()


def test_report_still_replaces_a_regular_file_and_writes_to_stdout(
    cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")
    assert cli("report", BUNDLE, "--trust", TRUST, "-o", str(out)).code == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    to_stdout = cli("report", BUNDLE, "--trust", TRUST, "-o", "-")
    assert (to_stdout.code, to_stdout.out[:15]) == (0, "<!DOCTYPE html>")


# ------------------------------------------------------------------ keys init


def _key_files(home: Path) -> list[str]:
    folder = home / "keys"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_keys_init_on_a_full_disk_leaves_no_key_file(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", full)
        result = cli("keys", "init")
    assert_one_line_error(result, 2)
    assert "No space left on device" in result.err
    assert _key_files(home) == []
    assert cli("keys", "init").code == 0  # nothing half-made stands in the way
    assert _key_files(home) == ["agent.key", "gateway.key", "issuer.key", "publisher.key"]


def test_keys_init_over_a_file_size_limit_leaves_no_key_file(cli: Cli, home: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))  # a key is larger: EFBIG
    try:
        result = cli("keys", "init")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert_one_line_error(result, 2)
    assert "cannot write key file" in result.err
    assert _key_files(home) == []


def test_keys_init_never_replaces_a_key_made_meanwhile(cli: Cli, home: Path) -> None:
    assert cli("keys", "init").code == 0
    before = (home / "keys" / "issuer.key").read_bytes()
    (home / "keys" / "agent.key").unlink()
    assert cli("keys", "init").code == 0
    assert (home / "keys" / "issuer.key").read_bytes() == before


@pytest.mark.parametrize(
    ("content", "said"), [(b"", "is empty"), (b'{"role": "publisher", "did": "did:k', "truncated")]
)
def test_an_empty_or_truncated_key_file_says_so_and_what_to_do(
    cli: Cli, home: Path, content: bytes, said: str
) -> None:
    assert cli("keys", "init").code == 0
    (home / "keys" / "publisher.key").write_bytes(content)
    result = cli("keys", "trust")
    assert_one_line_error(result, 2)
    assert said in result.err
    assert "publisher.key" in result.err
    assert "if no job depends on it, delete it" in result.err


# --------------------------------------------------------------- demo --bundle-out


@pytest.mark.parametrize(
    ("where", "said"),
    [
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "missing" / "b.json", "no folder"),
        (lambda tmp: tmp / "trust.json", "trust file is written as trust.json"),
    ],
    ids=["a directory", "no folder", "the trust file's name"],
)
def test_demo_refuses_an_unusable_bundle_out_before_it_runs(
    cli: Cli, tmp_path: Path, where: Callable[[Path], Path], said: str
) -> None:
    path = where(tmp_path)
    started = time.monotonic()
    result = cli("demo", "--scenario", "denied", "--bundle-out", str(path))
    assert time.monotonic() - started < 5  # refused up front, not after the whole run
    assert_one_line_error(result, 2)
    assert str(path) in result.err
    assert said in result.err
    assert not (tmp_path / "missing").exists()


def test_demo_refuses_a_symlink_as_bundle_out(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "target.json").write_text("theirs")
    (tmp_path / "b.json").symlink_to(tmp_path / "target.json")
    result = cli("demo", "--scenario", "denied", "--bundle-out", str(tmp_path / "b.json"))
    assert_one_line_error(result, 2)
    assert "not a regular file" in result.err
    assert (tmp_path / "target.json").read_text() == "theirs"


def test_demo_outputs_keep_another_trust_json(tmp_path: Path) -> None:
    (tmp_path / "trust.json").write_bytes(b"someone else's")
    trust = write_outputs(tmp_path / "b1.json", b"bundle", b"trust")
    assert trust == tmp_path / "b1.trust.json"
    assert (tmp_path / "trust.json").read_bytes() == b"someone else's"
    assert (trust.read_bytes(), (tmp_path / "b1.json").read_bytes()) == (b"trust", b"bundle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1.json", "b1.trust.json", "trust.json"]


def test_demo_outputs_use_trust_json_when_free_or_the_same(tmp_path: Path) -> None:
    assert write_outputs(tmp_path / "b1.json", b"bundle", b"trust") == tmp_path / "trust.json"
    assert write_outputs(tmp_path / "b2.json", b"bundle 2", b"trust") == tmp_path / "trust.json"
    assert (tmp_path / "trust.json").read_bytes() == b"trust"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1.json", "b2.json", "trust.json"]
