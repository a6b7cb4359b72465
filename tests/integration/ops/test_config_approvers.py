"""``config check`` notes a chat in which no job could ever get its two approvals: fewer than
two of ``policy.approvers`` mapped to people there, or a mapped "approver" outside the group
(whose approvals are then refused). Found by a black-box Slack run: it said OK."""

from __future__ import annotations

from pathlib import Path

from tests.integration.ops.support import breakglass, clean_environ

SLACK = {
    "BREAKGLASS_SLACK_BOT_TOKEN": "xoxb-test-token",
    "BREAKGLASS_SLACK_SIGNING_SECRET": "signing-secret-value",
    "BREAKGLASS_SLACK_INCIDENT_CHANNELS": "C0INCIDENT",
    "BREAKGLASS_SLACK_TEAM_ID": "T0HOME",
}


def notes(tmp_path: Path, approvers: str) -> list[str]:
    config = tmp_path / "breakglass.toml"
    config.write_text('[policy]\napprovers = ["u-bob", "u-carol"]\n')
    env = clean_environ(tmp_path, **SLACK, BREAKGLASS_SLACK_APPROVERS=approvers)
    done = breakglass(["config", "check", "--config", str(config)], env)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("note: slack:")]


def test_two_approvers_mapped_give_no_note(tmp_path: Path) -> None:
    assert notes(tmp_path, "UBOB=u-bob,UCAROL=u-carol") == []


def test_one_approver_and_an_outsider_are_both_named(tmp_path: Path) -> None:
    found = notes(tmp_path, "UCAROL=u-carol,UDAVE=u-dave")
    assert len(found) == 2, found
    outsider, short = found
    assert "UDAVE maps to u-dave, who is not in policy.approvers" in outsider
    assert "maps 1 of policy.approvers" in short
    assert "cannot be approved there" in short
