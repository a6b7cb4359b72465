"""``BREAKGLASS_SLACK_TEAM_ID`` / ``BREAKGLASS_SLACK_ENTERPRISE_ID``: read into ``SlackConfig``,
validated like the other ids, and ``breakglass config check`` notes when neither is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.ops.support import breakglass, clean_environ

SLACK = {
    "BREAKGLASS_SLACK_BOT_TOKEN": "xoxb-test-token",
    "BREAKGLASS_SLACK_SIGNING_SECRET": "signing-secret-value",
    "BREAKGLASS_SLACK_INCIDENT_CHANNELS": "C0INCIDENT",
    "BREAKGLASS_SLACK_APPROVERS": "UBOB=u-bob,UCAROL=u-carol",
}
NOTE = "note: slack: requests are accepted from any workspace that shares the signing secret"


def check(tmp_path: Path, **more: str) -> tuple[int, str, str]:
    done = breakglass(["config", "check"], clean_environ(tmp_path, **SLACK, **more))
    return done.returncode, done.stdout, done.stderr


def test_unbound_slack_is_noted_and_names_both_variables(tmp_path: Path) -> None:
    code, out, _err = check(tmp_path)
    assert code == 0
    (note,) = [line for line in out.splitlines() if line.startswith(NOTE)]
    assert "BREAKGLASS_SLACK_TEAM_ID" in note
    assert "BREAKGLASS_SLACK_ENTERPRISE_ID" in note


@pytest.mark.parametrize(
    "bound",
    [
        {"BREAKGLASS_SLACK_TEAM_ID": "T0HOME"},
        {"BREAKGLASS_SLACK_ENTERPRISE_ID": "E0HOME"},
        {"BREAKGLASS_SLACK_TEAM_ID": "T0HOME", "BREAKGLASS_SLACK_ENTERPRISE_ID": "E0HOME"},
    ],
)
def test_a_bound_workspace_is_ok_without_the_note(tmp_path: Path, bound: dict[str, str]) -> None:
    code, out, _err = check(tmp_path, **bound)
    assert code == 0
    assert NOTE not in out


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"BREAKGLASS_SLACK_TEAM_ID": "t0home"}, "team_id"),
        ({"BREAKGLASS_SLACK_TEAM_ID": "E0HOME"}, "team_id"),
        ({"BREAKGLASS_SLACK_ENTERPRISE_ID": "T0HOME"}, "enterprise_id"),
    ],
)
def test_a_malformed_id_is_a_problem(tmp_path: Path, bad: dict[str, str], named: str) -> None:
    code, _out, err = check(tmp_path, **bad)
    assert code == 2
    assert f"slack: {named} " in err
    assert "is malformed" in err
