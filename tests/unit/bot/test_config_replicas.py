"""Each replica names itself, and a deployment marks its grants (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import check_settings, load_settings


def test_replica_and_deployment_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "BREAKGLASS_HOME": str(tmp_path),
            "BREAKGLASS_REPLICA_ID": "replica-b",
            "BREAKGLASS_DEPLOYMENT": "prod-eu",
        }
    )
    assert (settings.replica_id, settings.deployment) == ("replica-b", "prod-eu")


def test_unset_means_the_defaults(tmp_path: Path) -> None:
    settings = load_settings({"BREAKGLASS_HOME": str(tmp_path)})
    assert (settings.replica_id, settings.deployment) == ("", "")


@pytest.mark.parametrize("bad", ["a b", "x]", "dep\nx"])
def test_a_deployment_that_would_break_the_grant_marker_is_refused(
    tmp_path: Path, bad: str
) -> None:
    settings, problems = check_settings(
        {"BREAKGLASS_HOME": str(tmp_path), "BREAKGLASS_DEPLOYMENT": bad}
    )
    assert settings is None
    assert any("BREAKGLASS_DEPLOYMENT" in p for p in problems), problems
