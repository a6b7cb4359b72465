from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.config import SlackConfig
from engine.errors import ConfigError

ENV = {
    "BREAKGLASS_SLACK_BOT_TOKEN": "xoxb-test-token",
    "BREAKGLASS_SLACK_SIGNING_SECRET": "signing-secret-value",
    "BREAKGLASS_SLACK_INCIDENT_CHANNELS": "C0INCIDENT, G0PRIVATE",
    "BREAKGLASS_SLACK_APPROVERS": "UBOB=u-bob,UCAROL=u-carol",
    "BREAKGLASS_SLACK_REQUESTERS": "UALICE=u-alice",
    "BREAKGLASS_TENANT_ID": "t-1",
}


def config(**over: Any) -> SlackConfig:
    fields: dict[str, Any] = {
        "bot_token": "xoxb-test-token",
        "signing_secret": "signing-secret-value",
        "incident_channels": frozenset({"C0INCIDENT"}),
        "approver_user_ids": {"UBOB": "u-bob"},
        "tenant_id": "t-1",
    }
    return SlackConfig(**(fields | over))


@pytest.mark.parametrize(
    "missing", ["BREAKGLASS_SLACK_BOT_TOKEN", "BREAKGLASS_SLACK_SIGNING_SECRET"]
)
def test_slack_is_off_unless_both_secrets_are_set(missing: str) -> None:
    assert SlackConfig.from_env({k: v for k, v in ENV.items() if k != missing}) is None
    assert SlackConfig.from_env(ENV | {missing: "  "}) is None


def test_from_env_reads_only_the_mapping_given() -> None:
    got = SlackConfig.from_env(ENV)
    assert got is not None
    assert got.incident_channels == {"C0INCIDENT", "G0PRIVATE"}
    assert got.approver_user_ids == {"UBOB": "u-bob", "UCAROL": "u-carol"}
    assert got.requesters == {"UALICE": "u-alice"}
    assert got.api_base == "https://slack.com/api/"
    assert got.app_token is None
    with_url = SlackConfig.from_env(ENV | {"BREAKGLASS_SLACK_API_URL": "http://127.0.0.1:9/api"})
    assert with_url is not None
    assert with_url.api_base == "http://127.0.0.1:9/api/"


def test_secrets_are_kept_out_of_repr() -> None:
    text = repr(config(app_token="xapp-secret-app-token"))
    for secret in ("xoxb-test-token", "signing-secret-value", "xapp-secret-app-token"):
        assert secret not in text


@pytest.mark.parametrize(
    "over",
    [
        {"incident_channels": frozenset()},
        {"incident_channels": frozenset({"general"})},
        {"approver_user_ids": {"bob": "u-bob"}},
        {"tenant_id": ""},
        {"api_url": "http://slack.example/api/"},
        {"api_url": "https://slack.example/api/?x=1"},
        {"command": "breakglass"},
        {"timeout": 0},
    ],
)
def test_malformed_config_is_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        config(**over)


@pytest.mark.parametrize("value", ["UBOB", "UBOB=", "=u-bob", "UBOB=u-bob,UBOB=u-carol"])
def test_malformed_user_lists_are_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        SlackConfig.from_env(ENV | {"BREAKGLASS_SLACK_APPROVERS": value})


def test_directory_maps_each_user_to_exactly_one_principal() -> None:
    both = config(approver_user_ids={"UBOB": "u-bob"}, requesters={"UBOB": "u-bob"})
    assert both.directory().resolve("slack:UBOB").principal == "u-bob"
    twice = config(approver_user_ids={"UBOB": "u-bob"}, requesters={"UBOB": "u-robert"})
    assert twice.directory().resolve("slack:UBOB").principal is None  # ambiguous: none
    assert config().directory().resolve("slack:UNOBODY").principal is None


def test_who_is_asked_and_who_may_request() -> None:
    c = config(approver_user_ids={"UBOB": "u-bob", "UROB": "u-bob", "UCAROL": "u-carol"})
    assert c.slack_users_of("u-bob") == ["UBOB", "UROB"]
    assert c.may_request("UANYONE")
    assert not config(requesters={"UALICE": "u-alice"}).may_request("UANYONE")
