"""Slack and Teams are built from the one settings model: secrets from NAME or NAME_FILE, a
half-configured platform refused by name, one identity directory where ambiguity denies."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.teams import msal_connections
from bot.config import check_settings, load_settings
from engine.errors import ConfigError

SLACK = {
    "BREAKGLASS_SLACK_BOT_TOKEN": "xoxb-test-token",
    "BREAKGLASS_SLACK_SIGNING_SECRET": "signing-secret-value",
    "BREAKGLASS_SLACK_INCIDENT_CHANNELS": "C0INCIDENT, G0PRIVATE",
    "BREAKGLASS_SLACK_APPROVERS": "UBOB=u-bob,UCAROL=u-carol",
    "BREAKGLASS_SLACK_REQUESTERS": "UALICE=u-alice",
}
TEAMS = {
    "BREAKGLASS_TEAMS_APP_ID": "00000000-0000-0000-0000-0000000000b0",
    "BREAKGLASS_TEAMS_TENANT_ID": "00000000-0000-0000-0000-0000000000aa",
    "BREAKGLASS_TEAMS_APP_PASSWORD": "teams-password-value",
    "BREAKGLASS_TEAMS_APPROVERS": "29:bob=u-bob",
}


def env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"BREAKGLASS_HOME": str(tmp_path), **more}


def test_slack_reads_every_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("xoxb-from-file\n")
    (tmp_path / "signing").write_text("signing-from-file\n")
    files = SLACK | {
        "BREAKGLASS_SLACK_BOT_TOKEN": "",
        "BREAKGLASS_SLACK_BOT_TOKEN_FILE": str(tmp_path / "token"),
        "BREAKGLASS_SLACK_SIGNING_SECRET": "",
        "BREAKGLASS_SLACK_SIGNING_SECRET_FILE": str(tmp_path / "signing"),
    }
    slack = load_settings(env(tmp_path, **files)).slack
    assert slack is not None
    assert (slack.bot_token, slack.signing_secret) == ("xoxb-from-file", "signing-from-file")
    assert slack.incident_channels == {"C0INCIDENT", "G0PRIVATE"}
    assert slack.tenant_id  # the service's tenant, never a separate Slack setting


def test_teams_reads_its_password_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    files = TEAMS | {"BREAKGLASS_TEAMS_APP_PASSWORD": ""}
    files["BREAKGLASS_TEAMS_APP_PASSWORD_FILE"] = str(tmp_path / "pw")
    teams = load_settings(env(tmp_path, **files)).teams
    assert teams is not None
    assert teams.app_password == "from-file"


def test_an_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    missing = {"BREAKGLASS_SLACK_BOT_TOKEN_FILE": str(tmp_path / "nope")}
    _settings, problems = check_settings(env(tmp_path, **missing))
    assert any(p.startswith("BREAKGLASS_SLACK_BOT_TOKEN_FILE: cannot read") for p in problems)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"BREAKGLASS_SLACK_BOT_TOKEN": "x"}, "BREAKGLASS_SLACK_SIGNING_SECRET"),
        ({"BREAKGLASS_SLACK_SIGNING_SECRET": "x"}, "BREAKGLASS_SLACK_BOT_TOKEN"),
        ({"BREAKGLASS_TEAMS_APP_ID": "x"}, "BREAKGLASS_TEAMS_TENANT_ID"),
        ({"BREAKGLASS_SLACK_APPROVERS": "UBOB"}, "BREAKGLASS_SLACK_APPROVERS"),
    ],
)
def test_a_half_configured_platform_is_refused_by_name(
    tmp_path: Path, given: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env(tmp_path, **given))


def test_slack_honours_the_toml_identities_table(tmp_path: Path) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text('[identities.map]\n"slack:UDAVE" = "u-dave"\n')
    settings = load_settings(env(tmp_path, **SLACK), path)
    assert settings.slack is not None
    directory = settings.slack.directory()
    assert directory.resolve("slack:UDAVE").principal == "u-dave"
    assert directory.resolve("slack:UBOB").principal == "u-bob"


@pytest.mark.parametrize(
    "people",
    [
        SLACK | {"BREAKGLASS_SLACK_APPROVERS": "UBOB=u-bob,UBOB=u-robert"},
        SLACK | {"BREAKGLASS_SLACK_REQUESTERS": "UBOB=u-robert"},
    ],
)
def test_a_slack_user_with_two_principals_is_denied(tmp_path: Path, people: dict[str, str]) -> None:
    settings = load_settings(env(tmp_path, **people))
    assert settings.directory.resolve("slack:UBOB").principal is None
    assert settings.slack is not None
    assert "UBOB" not in settings.slack.approver_user_ids
    assert any("slack:UBOB maps to 2 principals" in note for note in settings.notes)


@pytest.mark.parametrize(
    "people",
    [
        TEAMS | {"BREAKGLASS_TEAMS_APPROVERS": "29:bob=u-bob,29:bob=u-robert"},
        TEAMS | {"BREAKGLASS_TEAMS_REQUESTERS": "29:bob=u-robert"},
    ],
)
def test_a_teams_user_with_two_principals_is_denied_like_slack(
    tmp_path: Path, people: dict[str, str]
) -> None:
    settings = load_settings(env(tmp_path, **people))
    assert settings.directory.resolve("teams:29:bob").principal is None


def test_toml_and_chat_people_disagreeing_deny(tmp_path: Path) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text('[identities.map]\n"slack:UBOB" = "u-someone-else"\n')
    settings = load_settings(env(tmp_path, **SLACK), path)
    assert settings.directory.resolve("slack:UBOB").principal is None


def test_teams_outbound_token_authority_is_configurable(tmp_path: Path) -> None:
    sovereign = "https://login.microsoftonline.us/00000000-0000-0000-0000-0000000000aa"
    more = TEAMS | {"BREAKGLASS_TEAMS_TOKEN_AUTHORITY": sovereign}
    teams = load_settings(env(tmp_path, **more)).teams
    assert teams is not None
    assert teams.token_authority == sovereign
    connection = msal_connections(teams).get_default_connection_configuration()
    authority = connection.AUTHORITY
    assert authority == sovereign  # what the SDK's MSAL provider asks
    cleartext = TEAMS | {"BREAKGLASS_TEAMS_TOKEN_AUTHORITY": "http://login.example.us/x"}
    with pytest.raises(ConfigError, match="token_authority must use https"):
        load_settings(env(tmp_path, **cleartext))


def test_a_secret_written_into_the_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text('[slack]\nbot_token = "xoxb-oops"\n[model]\napi_key = "sk-oops"\n')
    settings, problems = check_settings(env(tmp_path), path)
    assert settings is None
    assert [p.split(":")[0] for p in problems] == ["model.api_key", "slack.bot_token"]
    assert "BREAKGLASS_SLACK_BOT_TOKEN_FILE" in problems[1]
    assert not any("oops" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[slack]\nincident_channels = ["C1"]\n',
            "slack: Slack is half-configured: BREAKGLASS_SLACK_BOT_TOKEN (or _FILE) and "
            "BREAKGLASS_SLACK_SIGNING_SECRET (or _FILE) not set",
        ),
        (
            '[teams]\napp_id = "a"\ntenant_id = "t"\n',
            "teams: Teams is half-configured: BREAKGLASS_TEAMS_APP_PASSWORD (or _FILE) or "
            "teams.cert_path (or BREAKGLASS_TEAMS_CERT_PATH) not set",
        ),
    ],
)
def test_a_missing_secret_is_named_by_its_variable_only(
    tmp_path: Path, text: str, problem: str
) -> None:
    """A secret written into the file is refused, so naming its TOML key sends people there."""
    path = tmp_path / "breakglass.toml"
    path.write_text(text)
    settings, problems = check_settings(env(tmp_path), path)
    assert settings is None
    assert problems == [problem]


def test_cleartext_model_upstream_only_on_loopback(tmp_path: Path) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text('[model]\nmode = "openai"\nbase_url = "http://models.example/v1"\n')
    with pytest.raises(ConfigError, match=r"model\.base_url must use https"):
        load_settings(env(tmp_path), path)
    path.write_text('[model]\nmode = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    assert load_settings(env(tmp_path), path).model.base_url == "http://127.0.0.1:9/v1"
