"""The service's clocks: the test-mode file clock stands still until it is moved."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.assembly import CLOCK_FILE_VAR, make_clock
from bot.clock import FileClock, ScaledClock, SteadyClock
from bot.config import load_settings
from engine.errors import ConfigError, InputError
from tests.support.fakes import Clock

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_file_clock_moves_only_when_told(tmp_path: Path) -> None:
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    assert clock() == clock.now() == T0
    assert clock.advance(timedelta(minutes=5)) == T0 + timedelta(minutes=5)
    assert FileClock(tmp_path / "clock").now() == T0 + timedelta(minutes=5)  # another reader
    assert [p.name for p in tmp_path.iterdir()] == ["clock"]  # no temporary file left


def test_a_file_clock_with_garbage_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "clock").write_text("noon-ish")
    with pytest.raises(InputError):
        FileClock(tmp_path / "clock").now()


def test_the_service_reads_the_clock_file_in_test_mode(tmp_path: Path) -> None:
    FileClock(tmp_path / "clock").set(T0)
    env = {"BREAKGLASS_HOME": str(tmp_path), CLOCK_FILE_VAR: str(tmp_path / "clock")}
    assert make_clock(load_settings(env))() == T0


def test_a_clock_file_with_a_real_tenant_is_refused(tmp_path: Path) -> None:
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_GRAPH_CLIENT_SECRET": "s3cret",
        CLOCK_FILE_VAR: str(tmp_path / "clock"),
    }
    settings = load_settings(env, REPO / "breakglass.example.toml")
    with pytest.raises(ConfigError, match=CLOCK_FILE_VAR):
        make_clock(settings)


def test_without_a_clock_file_time_is_real_or_scaled(tmp_path: Path) -> None:
    assert isinstance(make_clock(load_settings({"BREAKGLASS_HOME": str(tmp_path)})), SteadyClock)
    scaled = ScaledClock(T0, 12.0)
    assert scaled.real_seconds(60) == 5.0


class Counted:
    """A monotonic clock only the test moves."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def __call__(self) -> float:
        return self.seconds


def test_a_step_back_of_the_system_clock_does_not_turn_time_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wall, counted = Clock(T0), Counted()
    steady = SteadyClock(wall, counted)
    wall.advance(minutes=5)
    counted.seconds += 300
    assert steady() == T0 + timedelta(minutes=5)
    wall.advance(hours=-1, minutes=1)  # a minute passes; NTP steps back an hour-fast clock
    counted.seconds += 60
    assert steady() == T0 + timedelta(minutes=6)  # counted on, not an hour back
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [e.getMessage()[:36] for e in errors] == ["the system clock stepped back 3600 s"]
    wall.advance(minutes=1)
    counted.seconds += 60
    assert steady() == T0 + timedelta(minutes=7)
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1  # once per step


def test_a_step_forward_of_the_system_clock_is_taken() -> None:
    wall, counted = Clock(T0), Counted()
    steady = SteadyClock(wall, counted)
    wall.advance(hours=2)  # a resumed machine: the monotonic clock did not count the pause
    counted.seconds += 1
    assert steady() == T0 + timedelta(hours=2)
    counted.seconds += 30
    wall.advance(seconds=30)
    assert steady() == T0 + timedelta(hours=2, seconds=30)
