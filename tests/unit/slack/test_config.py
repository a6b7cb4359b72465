from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.config import SlackConfig
from engine.errors import ConfigError


def config(**over: Any) -> SlackConfig:
    fields: dict[str, Any] = {
        "bot_token": "xoxb-test-token",
        "signing_secret": "signing-secret-value",
        "incident_channels": frozenset({"C0INCIDENT"}),
        "approver_user_ids": {"UBOB": "u-bob"},
        "tenant_id": "t-1",
    }
    return SlackConfig(**(fields | over))


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
