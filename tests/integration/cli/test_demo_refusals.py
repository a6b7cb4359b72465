"""``breakglass demo`` refuses an option it could not run with when it reads it: exit 2, one
line naming the option and why, and nothing started (no simulated tenant, no service, no
demo home). Each of these once started everything and failed later, its reason only in the
service's log or in a refused request."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NoReturn

import pytest

from bot.demo_options import DemoOptions
from tests.integration.cli.conftest import Cli, assert_one_line_error


@pytest.fixture
def nothing_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the demo would make its home in; starting the simulated tenant (the first
    thing a run does, before the service) fails the test at once."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def started(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("the demo started before it refused its options")

    monkeypatch.setattr("bot.demo.SimulatedTenant", started)
    return temp


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (("--speed", "601"), ("--speed 601", "1 to 600")),
        (("--speed", "0.5"), ("--speed 0.5", "1 to 600")),
        (("--speed", "0"), ("--speed 0", "1 to 600")),
        (("--speed", "-3"), ("--speed -3", "1 to 600")),
        (("--speed", "nan"), ("--speed nan", "1 to 600")),
        (("--speed", "inf"), ("--speed inf", "1 to 600")),
        (("--minutes", "4"), ("--minutes 4", "5 to 60", "shorter than 5 minutes")),
        (("--minutes", "0"), ("--minutes 0", "5 to 60")),
        (("--minutes", "-5"), ("--minutes -5", "5 to 60")),
        (("--minutes", "61"), ("--minutes 61", "5 to 60")),
        (("--scenario", "crash", "--minutes", "4"), ("--minutes 4", "5 to 60")),
    ],
)
def test_an_option_out_of_its_range_is_refused_before_anything_starts(
    cli: Cli, nothing_starts: Path, argv: tuple[str, ...], mentions: tuple[str, ...]
) -> None:
    result = cli("demo", *argv)
    assert_one_line_error(result, 2)
    for text in mentions:
        assert text in result.err, result.err
    assert list(nothing_starts.iterdir()) == []  # no demo home was made


def test_openclaw_not_installed_is_refused_before_anything_starts(
    cli: Cli, nothing_starts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where the demo's service looks for `make openclaw`'s install: an empty folder here (the
    # project's own .openclaw/, installed or not, is left alone).
    empty = tmp_path / "no-openclaw"
    empty.mkdir()
    monkeypatch.setattr("adapters.openclaw.install.DEFAULT_ROOT", empty)
    result = cli("demo", "--executor", "openclaw", "--scenario", "injected")
    assert_one_line_error(result, 2)
    assert "OpenClaw is not installed" in result.err
    assert "run make openclaw" in result.err
    assert str(empty) in result.err
    assert list(nothing_starts.iterdir()) == []


@pytest.mark.parametrize(
    "options",
    [
        DemoOptions(),
        DemoOptions(scale=1, minutes=5),
        DemoOptions(scale=600, minutes=60),
        DemoOptions(scenario="crash", scale=6.0, crash_at="during_rollback"),
    ],
    ids=["defaults", "lowest", "highest", "crash"],
)
def test_the_ends_of_each_range_are_accepted(options: DemoOptions) -> None:
    from bot.demo_options import check_options

    check_options(options)


def test_the_help_states_each_range(cli: Cli) -> None:
    text = " ".join(cli("demo", "--help").out.split())
    assert "1-600" in text
    assert "5-60" in text
