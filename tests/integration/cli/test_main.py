"""The command line as a whole: --help everywhere, one-line errors, the command registry,
and the installed entry point in a real subprocess."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, main, run
from bot.commands import COMMANDS, GROUPS, Command, Context, Group
from bot.home import Home
from tests.integration.cli.conftest import ROLE_ARGS, Cli, assert_one_line_error

PATHS = sorted({(), *(c.path for c in COMMANDS), *(g.path for g in GROUPS)})
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "breakglass")
def test_help_on_every_command(cli: Cli, path: tuple[str, ...]) -> None:
    result = cli(*path, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: {' '.join(('breakglass', *path))}")
    assert result.err == ""


def test_every_registered_command_has_help_text() -> None:
    assert {c.path[0] for c in COMMANDS} >= {"keys", "policy", "token", "verify", "serve", "config"}
    assert all(c.help for c in COMMANDS)
    assert all(g.help for g in GROUPS)


ERRORS = {
    "no command": ((), 2, "required: COMMAND"),
    "unknown command": (("frobnicate",), 2, "invalid choice"),
    "group without command": (("policy",), 2, "required: COMMAND"),
    "missing option": (("policy", "template", "entra-role", "--tenant", "t"), 2, "--principal"),
    "bad integer": ((*ROLE_ARGS[:-6], "--minutes", "ten", "--requester", "u"), 2, "'ten'"),
    "unknown option": (("verify", "x.json", "--colour"), 2, "--colour"),
    "bad profile": (("verify", "x.json", "--profile", "lenient"), 2, "lenient"),
    "duration above maximum": ((*ROLE_ARGS[:9], "--minutes", "600", "--requester", "u"), 2, "60"),
    "missing file": (("policy", "hash", "/nonexistent/file.json"), 2, "No such file"),
    "missing policy": (("token", "issue", "--policy", "none.json", "--job", "j"), 2, "none.json"),
    # what Python makes of the bytes ff fe in argv (surrogateescape)
    "argument not UTF-8": ((*ROLE_ARGS[:-1], "\udcff\udcfe"), 2, "not UTF-8 text"),
    "bad ttl": (
        ("token", "issue", "--policy", "p.json", "--job", "j", "--ttl-seconds", "x"),
        2,
        "x",
    ),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_every_error_is_one_line(keyed: Cli, name: str) -> None:
    argv, code, mentions = ERRORS[name]
    result = keyed(*argv)
    assert_one_line_error(result, code)
    assert mentions in result.err


def _context(tmp_path: Path) -> Context:
    return Context(Home(tmp_path, "sqlite:///unused.db"))


def test_an_unexpected_error_is_one_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(_args: argparse.Namespace, _ctx: Context) -> int:
        table: dict[str, int] = {}
        return table["missing"]

    code = run(Command(("broken",), "fails", broken), argparse.Namespace(), _context(tmp_path))
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == "breakglass: internal error (KeyError): 'missing'\n"


def test_a_new_command_is_one_registry_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def check(args: argparse.Namespace, _ctx: Context) -> int:
        print(f"checked strict={args.strict}")
        return 0

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--strict", action="store_true")

    extra = Command(("audit", "check"), "check the audit trail", check, arguments)
    parser = build_parser((*COMMANDS, extra), (*GROUPS, Group(("audit",), "audit")))
    args = parser.parse_args(["audit", "check", "--strict"])
    assert run(args._command, args, _context(tmp_path)) == 0
    assert capsys.readouterr().out == "checked strict=True\n"


def test_a_command_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        build_parser((*COMMANDS, COMMANDS[0]), GROUPS)
    nested = Command((*COMMANDS[-1].path, "deeper"), "x", COMMANDS[-1].run)
    with pytest.raises(ValueError, match="both a command and a group"):
        build_parser((*COMMANDS, nested), GROUPS)


def test_main_reads_argv_when_none_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["breakglass", "--help"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("usage: breakglass")


def test_output_that_cannot_be_written_is_unusable_not_internal(tmp_path: Path) -> None:
    # exit 1 would say "invalid" (verify) or "failed"; the command's work is not at fault
    if not Path("/dev/full").exists():
        pytest.skip("SKIPPED LOUDLY: no /dev/full here")
    assert _subprocess([sys.executable, "-m", "bot.cli", "keys", "init"], tmp_path).returncode == 0
    env = {**os.environ, "BREAKGLASS_HOME": str(tmp_path / "home")}
    with Path("/dev/full").open("w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "keys", "trust"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == "breakglass: input/output failed: No space left on device\n"


def _subprocess(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BREAKGLASS_HOME": str(tmp_path / "home")}
    env.pop("BREAKGLASS_DATABASE_URL", None)
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False
    )


def test_python_dash_m_help(tmp_path: Path) -> None:
    done = _subprocess([sys.executable, "-m", "bot.cli", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: breakglass")


def test_installed_entry_point(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("breakglass")
    if not script.exists():
        pytest.skip(f"SKIPPED LOUDLY: {script} is not installed (run make dev)")
    helped = _subprocess([str(script), "verify", "--help"], tmp_path)
    assert helped.returncode == 0
    assert "--profile" in helped.stdout
    failed = _subprocess([str(script), "verify", str(tmp_path / "missing.json")], tmp_path)
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert len(failed.stderr.splitlines()) == 1
    assert "Traceback" not in failed.stderr
    init = _subprocess([str(script), "keys", "init"], tmp_path)
    assert (init.returncode, init.stdout.count("(created)")) == (0, 4)
