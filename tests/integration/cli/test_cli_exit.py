"""Exit codes as each command's --help documents them: 2 when the input or the environment
(the home, the store, stdin) is unusable, never 1, which means "invalid" or "yes"."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from tests.integration.cli.conftest import Cli, Signed, assert_one_line_error

UNREACHABLE = "postgresql+psycopg://breakglass:pw@127.0.0.1:1/breakglass"


def stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


# ------------------------------------------------------------------ config check


def test_config_check_refuses_a_home_under_a_regular_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BREAKGLASS_HOME", str(blocker / "home"))
    trust = cli("keys", "trust")
    check = cli("config", "check")
    assert_one_line_error(check, 2)
    assert check.err == trust.err  # the same one line as every other command
    assert "Not a directory" in check.err
    assert str(blocker / "home") in check.err


def test_config_check_refuses_a_home_that_is_a_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BREAKGLASS_HOME", str(blocker))
    check = cli("config", "check")
    assert_one_line_error(check, 2)
    assert f"the home {blocker} is not a directory" in check.err


def test_config_check_names_step_up_without_a_template_table(keyed: Cli, home: Path) -> None:
    # Every request would be refused "template entra-role is not enabled here".
    (home / "breakglass.toml").write_text('[step_up]\nauthentication_context = "c1"\n')
    check = keyed("config", "check")
    assert check.code == 2, check
    assert check.out == ""
    assert check.err.splitlines() == [
        "breakglass: step_up: with [step_up] set, each template that may be requested needs "
        "its [templates.<name>] table (entra-role, ca-exclusion); there is none, so every "
        "request would be refused (docs/stepup.md)",
        "breakglass: 1 problem(s) found",
    ]


def test_serve_refuses_step_up_without_a_template_table_at_start(
    keyed: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def started(*_args: object) -> NoReturn:
        raise AssertionError("serve started with a configuration that refuses every request")

    monkeypatch.setattr("bot.commands.serve.Runtime", started)
    (home / "breakglass.toml").write_text('[step_up]\nauthentication_context = "c1"\n')
    result = keyed("serve", "--port", "0")
    assert_one_line_error(result, 2)
    assert "[templates.<name>] table" in result.err


# ------------------------------------------------------------------ an unusable store


@pytest.fixture
def corrupt_store(keyed: Cli, home: Path) -> Cli:
    (home / "breakglass.db").write_bytes(os.urandom(4096))
    return keyed


@pytest.fixture
def unreachable_store(keyed: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BREAKGLASS_DATABASE_URL", UNREACHABLE)
    return keyed


@pytest.mark.parametrize("store", ["corrupt_store", "unreachable_store"])
def test_evidence_secret_with_an_unusable_store_is_exit_2(
    store: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli: Cli = request.getfixturevalue(store)
    stdin_bytes(monkeypatch, b"the secret\n")
    result = cli("evidence", "secret", "--job", "job-1")
    assert_one_line_error(result, 2)
    assert "cannot use the store" in result.err
    assert "pw" not in result.err


@pytest.mark.parametrize("store", ["corrupt_store", "unreachable_store"])
def test_token_revoke_with_an_unusable_store_is_exit_2(
    store: str, request: pytest.FixtureRequest
) -> None:
    cli: Cli = request.getfixturevalue(store)
    result = cli("token", "revoke", "cst_x")
    assert_one_line_error(result, 2)
    assert "cannot use the store" in result.err


def test_evidence_secret_help_names_exit_2(cli: Cli) -> None:
    result = cli("evidence", "--help")
    assert "2 unusable input or store" in " ".join(result.out.split())


# ------------------------------------------------------------------ token verify stdin


def test_token_verify_refuses_stdin_that_is_not_utf8(
    sign: Callable[[str], Signed], keyed: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = sign("job-1")
    stdin_bytes(monkeypatch, b"\xff\xfe")
    result = keyed("token", "verify", "--policy", str(signed.envelope), "--job", "job-1", "-")
    assert_one_line_error(result, 2)
    assert "not UTF-8 text" in result.err


def test_token_verify_still_reads_a_token_on_stdin(
    sign: Callable[[str], Signed], keyed: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = sign("job-1")
    issued = keyed("token", "issue", "--policy", str(signed.envelope), "--job", "job-1")
    stdin_bytes(monkeypatch, issued.out.encode())
    result = keyed("token", "verify", "--policy", str(signed.envelope), "--job", "job-1", "-")
    assert (result.code, result.out.split()[0]) == (0, "VALID")
