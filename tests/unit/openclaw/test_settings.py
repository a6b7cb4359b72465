"""``[executor] mode = "openclaw"`` is one of the settings model's executors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from engine.errors import ConfigError


def settings_with(tmp_path: Path, mode: str) -> Settings:
    path = tmp_path / "breakglass.toml"
    path.write_text(f'[executor]\nmode = "{mode}"\n')
    return load_settings({"BREAKGLASS_HOME": str(tmp_path)}, path)


def test_openclaw_is_an_executor_mode(tmp_path: Path) -> None:
    assert settings_with(tmp_path, "openclaw").executor == "openclaw"


def test_an_unknown_mode_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"executor\.mode"):
        settings_with(tmp_path, "openclaw-latest")
