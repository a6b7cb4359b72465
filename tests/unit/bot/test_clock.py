"""The service's clocks: the test-mode file clock stands still until it is moved."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.assembly import CLOCK_FILE_VAR, make_clock
from bot.clock import FileClock, ScaledClock, system_clock
from bot.config import load_settings
from engine.errors import ConfigError, InputError

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
    assert make_clock(load_settings({"BREAKGLASS_HOME": str(tmp_path)})) is system_clock
    scaled = ScaledClock(T0, 12.0)
    assert scaled.real_seconds(60) == 5.0
