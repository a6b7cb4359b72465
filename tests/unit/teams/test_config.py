from __future__ import annotations

from pathlib import Path

import pytest

from adapters.teams.config import BOT_FRAMEWORK_ISSUER, BOT_FRAMEWORK_OPENID_URL, TeamsConfig
from engine.errors import ConfigError

BASE = {
    "BREAKGLASS_TEAMS_APP_ID": "app-1",
    "BREAKGLASS_TEAMS_APP_PASSWORD": "s3cret-value",
    "BREAKGLASS_TEAMS_TENANT_ID": "tenant-1",
}


def test_teams_is_off_without_an_app_id() -> None:
    assert TeamsConfig.from_env({}) is None
    assert TeamsConfig.from_env({"BREAKGLASS_TEAMS_APP_PASSWORD": "x"}) is None
    assert TeamsConfig.from_env({"BREAKGLASS_TEAMS_APP_ID": "   "}) is None


def test_from_env_reads_the_mapping_it_is_given() -> None:
    config = TeamsConfig.from_env(
        BASE
        | {
            "BREAKGLASS_TEAMS_INCIDENT_CONVERSATIONS": "19:a@thread.tacv2;messageid=9, 19:b@t.v2",
            "BREAKGLASS_TEAMS_APPROVERS": "29:bob=u-bob, 8a1c-aad=u-carol",
            "BREAKGLASS_TEAMS_REQUESTERS": "29:alice=u-alice",
        }
    )
    assert config is not None
    assert config.app_id == "app-1"
    assert config.tenant_id == "tenant-1"
    assert config.app_password == "s3cret-value"
    assert config.openid_metadata_url == BOT_FRAMEWORK_OPENID_URL
    assert config.allowed_issuers == (BOT_FRAMEWORK_ISSUER,)
    assert config.incident_conversations == {"19:a@thread.tacv2", "19:b@t.v2"}
    assert dict(config.approvers) == {"29:bob": "u-bob", "8a1c-aad": "u-carol"}
    assert config.dev_disable_auth is False


def test_certificate_path_instead_of_a_password() -> None:
    env = {k: v for k, v in BASE.items() if "PASSWORD" not in k}
    config = TeamsConfig.from_env(env | {"BREAKGLASS_TEAMS_CERT_PATH": "/etc/bg/teams.pfx"})
    assert config is not None
    assert config.certificate_path == Path("/etc/bg/teams.pfx")
    assert config.app_password is None


def test_secret_stays_out_of_repr() -> None:
    config = TeamsConfig.from_env(BASE)
    assert "s3cret-value" not in repr(config)


@pytest.mark.parametrize(
    "changes",
    [
        {"BREAKGLASS_TEAMS_TENANT_ID": ""},
        {"BREAKGLASS_TEAMS_APP_PASSWORD": ""},
        {"BREAKGLASS_TEAMS_CERT_PATH": "/x.pfx"},  # two credentials
        {"BREAKGLASS_TEAMS_OPENID_METADATA_URL": "http://login.example/v1/meta"},
        {"BREAKGLASS_TEAMS_APPROVERS": "29:bob"},
        {"BREAKGLASS_TEAMS_APPROVERS": "29:bob="},
        {"BREAKGLASS_TEAMS_DEV_DISABLE_AUTH": "yes please"},
        {"BREAKGLASS_TEAMS_APPROVERS": "29:x=u-1", "BREAKGLASS_TEAMS_REQUESTERS": "29:x=u-2"},
    ],
)
def test_wrong_settings_are_refused(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        TeamsConfig.from_env(BASE | changes)


def test_authentication_is_off_only_when_asked_explicitly() -> None:
    with pytest.raises(ConfigError):
        TeamsConfig(app_id="", tenant_id="t", dev_disable_auth=True)
    config = TeamsConfig.from_env(BASE | {"BREAKGLASS_TEAMS_DEV_DISABLE_AUTH": "true"})
    assert config is not None
    assert config.dev_disable_auth is True


def test_loopback_metadata_is_allowed_for_tests() -> None:
    config = TeamsConfig(
        app_id="a", tenant_id="t", app_password="p", openid_metadata_url="http://127.0.0.1:1/m"
    )
    assert config.openid_metadata_url.startswith("http://127.0.0.1")


def test_incident_channel_matches_its_threads() -> None:
    config = TeamsConfig(
        app_id="a", tenant_id="t", app_password="p", incident_conversations=frozenset({"19:a@t"})
    )
    assert config.is_incident("19:a@t;messageid=123")
    assert config.is_incident("19:a@t")
    assert not config.is_incident("19:b@t;messageid=123")
    assert not config.is_incident("")


def test_directory_entries_name_teams_identities() -> None:
    config = TeamsConfig(
        app_id="a",
        tenant_id="t",
        app_password="p",
        approvers={"29:bob": "u-bob"},
        requesters={"29:alice": "u-alice", "29:bob": "u-bob"},
    )
    assert config.directory_entries() == {"teams:29:bob": ["u-bob"], "teams:29:alice": ["u-alice"]}
