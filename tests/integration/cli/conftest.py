"""Run the real ``breakglass`` main() in-process with a fresh $BREAKGLASS_HOME per test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1]


Cli = Callable[..., Result]


def assert_one_line_error(result: Result, code: int | None = None) -> None:
    """An error: non-zero exit, exactly one line on stderr, nothing on stdout, no traceback."""
    assert result.code != 0
    if code is not None:
        assert result.code == code, result
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert result.err.startswith("breakglass"), result.err
    assert result.out == ""
    assert "Traceback" not in result.err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("BREAKGLASS_HOME", str(root))
    monkeypatch.delenv("BREAKGLASS_DATABASE_URL", raising=False)
    return root


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def keyed(cli: Cli) -> Cli:
    assert cli("keys", "init").code == 0
    return cli


ROLE_ARGS = (
    "policy", "template", "entra-role",
    "--tenant", "11111111-1111-1111-1111-111111111111",
    "--principal", "u-alice",
    "--role", "r-ga",
    "--minutes", "30",
    "--requester", "u-alice",
    "--justification", "INC-42: MFA outage",
    "--ticket", "INC-42",
)  # fmt: skip


@dataclass(frozen=True)
class Signed:
    payload: Path
    envelope: Path
    job: str


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sign(keyed: Cli, tmp_path: Path) -> Callable[[str], Signed]:
    """Template + sign a role policy for a job, through the CLI, into files."""

    def make(job: str = "job-1") -> Signed:
        made = keyed(*ROLE_ARGS, "--job", job)
        assert made.code == 0, made.err
        payload = write(tmp_path / f"{job}.payload.json", made.out)
        signed = keyed("policy", "sign", str(payload))
        assert signed.code == 0, signed.err
        return Signed(payload, write(tmp_path / f"{job}.envelope.json", signed.out), job)

    return make
