"""``breakglass config check`` lists EVERY problem, each naming its TOML path or variable, and
exits 2; ``--online`` asks Graph, Slack and the Teams authority (fakes on loopback)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from adapters.graph.simulated import SimulatedTenant
from bot.app import SIMULATED_SEED, seed_people
from tests.integration.ops.fake_authority import FakeAuthority
from tests.integration.ops.support import REPO, breakglass, clean_environ
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.support import INCIDENT, SECRET, TOKEN

FIVE_MISTAKES = """
[service]
prot = 8080                      # 1: unknown setting in a known section
[tenant]
colour = "red"                   # 2
client_secret = "in-the-file"    # 3: a secret written into the file
[policy]
max_minute = 30                  # 4
[clock]
scale = 0                        # 5: out of range
"""
TEAMS_APP = "00000000-0000-0000-0000-0000000000b0"
TEAMS_TENANT = "00000000-0000-0000-0000-0000000000aa"


def problems(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert lines[-1] == f"breakglass: {len(lines) - 1} problem(s) found"
    return [line.removeprefix("breakglass: ") for line in lines[:-1]]


def test_a_file_with_five_mistakes_lists_five_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(FIVE_MISTAKES)
    done = breakglass(
        ["config", "check", "--config", str(tmp_path / "bad.toml")], clean_environ(tmp_path)
    )
    assert done.returncode == 2
    found = problems(done.stderr)
    assert sorted(p.split(":")[0] for p in found) == [
        "clock.scale",
        "policy.max_minute",
        "service.prot",
        "tenant.client_secret",
        "tenant.colour",
    ]
    assert "in-the-file" not in done.stderr


def test_keys_store_and_approvers_are_checked_together(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    (tmp_path / "g.toml").write_text(
        '[tenant]\nmode = "graph"\ntenant_id = "t"\nclient_id = "c"\n'
        '[policy]\napprovers = ["a", "b"]\n'
    )
    env = clean_environ(
        tmp_path,
        BREAKGLASS_GRAPH_CLIENT_SECRET="graph-secret-value",
        # libpq takes a password in the query too
        BREAKGLASS_DATABASE_URL=f"postgresql+psycopg://bg:hunter2@127.0.0.1:{port}/x"
        "?password=in-the-query",
    )
    done = breakglass(["config", "check", "--config", str(tmp_path / "g.toml")], env)
    assert done.returncode == 2
    found = problems(done.stderr)
    assert [p.split(":")[0] for p in found] == ["keys", "BREAKGLASS_DATABASE_URL"]
    assert "hunter2" not in done.stderr
    assert "in-the-query" not in done.stderr


def test_slack_without_a_tenant_needs_none_and_one_approver_is_refused(tmp_path: Path) -> None:
    (tmp_path / "one.toml").write_text('[policy]\napprovers = ["only-one"]\n')
    env = clean_environ(
        tmp_path,
        BREAKGLASS_SLACK_BOT_TOKEN=TOKEN,
        BREAKGLASS_SLACK_SIGNING_SECRET=SECRET,
        BREAKGLASS_SLACK_INCIDENT_CHANNELS="not-a-channel",
    )
    done = breakglass(["config", "check", "--config", str(tmp_path / "one.toml")], env)
    found = problems(done.stderr)
    assert any(p.startswith("policy.approvers names 1 distinct approver") for p in found)
    assert any(p.startswith("slack: incident channel id 'not-a-channel'") for p in found)
    assert not any("tenant_id is required" in p for p in found)


def test_a_good_configuration_says_what_will_run(tmp_path: Path) -> None:
    done = breakglass(["config", "check"], clean_environ(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("configuration OK: store sqlite")
    assert "chat console" in done.stdout
    assert "internal 127.0.0.1:8081" in done.stdout


async def check_online(env: Mapping[str, str], config: Path) -> tuple[int, str, str]:
    """Run the check while this loop keeps serving the fakes."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "config",
        "check",
        "--online",
        "--config",
        str(config),
        env=dict(env),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_online_asks_graph_slack_and_the_teams_authority(tmp_path: Path) -> None:
    sim, slack = SimulatedTenant(), FakeSlack(TOKEN, {INCIDENT})
    authority = FakeAuthority(TEAMS_TENANT, TEAMS_APP, "teams-password-value")
    base = await sim.start()
    await slack.start()
    await authority.start()
    people = seed_people()
    config = tmp_path / "breakglass.toml"
    config.write_text(
        f'[tenant]\nmode = "graph"\ntenant_id = "{SIMULATED_SEED["tenantId"]}"\n'
        f'client_id = "{SIMULATED_SEED["application"]["appId"]}"\n'
        f'authority_url = "{base}"\ngraph_url = "{base}/v1.0"\n'
        f'[policy]\napprovers = ["{people["bob"]}", "{people["carol"]}"]\n'
    )
    good = clean_environ(
        tmp_path,
        BREAKGLASS_GRAPH_CLIENT_SECRET=sim.client_secret,
        BREAKGLASS_SLACK_BOT_TOKEN=TOKEN,
        BREAKGLASS_SLACK_SIGNING_SECRET=SECRET,
        BREAKGLASS_SLACK_API_URL=slack.api_url,
        BREAKGLASS_SLACK_INCIDENT_CHANNELS=INCIDENT,
        BREAKGLASS_SLACK_TEAM_ID=slack.team_id,  # bound: a good config has no note
        BREAKGLASS_SLACK_APPROVERS=f"UBOB={people['bob']},UCAROL={people['carol']}",
        BREAKGLASS_TEAMS_APPROVERS=f"29:bob={people['bob']},29:carol={people['carol']}",
        BREAKGLASS_TEAMS_APP_ID=TEAMS_APP,
        BREAKGLASS_TEAMS_TENANT_ID=TEAMS_TENANT,
        BREAKGLASS_TEAMS_APP_PASSWORD="teams-password-value",
        BREAKGLASS_TEAMS_TOKEN_AUTHORITY=f"{authority.base_url}/{TEAMS_TENANT}",
    )
    try:
        assert breakglass(["keys", "init"], good).returncode == 0
        code, out, err = await check_online(good, config)
        assert code == 0, err
        assert out.startswith("configuration OK")
        assert [c.method for c in slack.calls] == ["auth.test"]
        assert authority.scopes_asked == ["https://api.botframework.com/.default"]
        wrong = good | {
            "BREAKGLASS_GRAPH_CLIENT_SECRET": "not-the-secret",
            "BREAKGLASS_SLACK_BOT_TOKEN": "xoxb-wrong",
            "BREAKGLASS_TEAMS_APP_PASSWORD": "wrong-password",
        }
        code, _out, err = await check_online(wrong, config)
        assert code == 2
        found = problems(err)
        assert [p.split(":")[0] for p in found] == ["tenant", "slack", "teams"]
        assert "invalid_auth" in found[1]
        for secret in ("not-the-secret", "xoxb-wrong", "wrong-password"):
            assert secret not in err
    finally:
        await authority.stop()
        await slack.stop()
        await sim.stop()
