"""The one loopback-URL rule (``adapters/loopback.py``) and the configs that use it."""

from __future__ import annotations

import pytest

from adapters.graph.config import GraphConfig
from adapters.loopback import check_base_url, is_loopback_http
from adapters.slack.config import SlackConfig
from adapters.teams.config import TeamsConfig
from engine.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1.0",
        "http://127.0.0.1",
        "http://127.255.3.4:9",  # all of 127.0.0.0/8
        "http://[::1]:80",
        "http://localhost:80",
        "http://LOCALHOST",
        "HTTP://127.0.0.1",  # schemes compare case-insensitively
    ],
)
def test_loopback_http(url: str) -> None:
    assert is_loopback_http(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1",  # not cleartext at all
        "http://0.0.0.0:80",  # every interface, not loopback
        "http://[::]:80",
        "http://10.0.0.1",
        "http://128.0.0.1",
        "http://127.0.0.1@evil.example/",  # userinfo: the host is evil.example
        "http://evil.example@127.0.0.1/",  # userinfo at all is refused
        "http://user:pw@localhost/",
        "http://127.0.0.1.evil.example/",
        "http://localhost.evil.example/",
        "http://evil.example/#@127.0.0.1",
        "ftp://127.0.0.1",
        "//127.0.0.1",
        "http://",
        "",
        "not a url",
    ],
)
def test_not_loopback_http(url: str) -> None:
    assert not is_loopback_http(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://login.example.net",
        "http://127.0.0.1@evil.example",
        "http://0.0.0.0:9",
        "https://h/x?y=1",
        "https://h/x#frag",
        "https:///path-only",
    ],
)
def test_base_url_check_refuses(url: str) -> None:
    with pytest.raises(ConfigError):
        check_base_url("api_url", url)


def test_base_url_check_allows_https_and_loopback_http() -> None:
    check_base_url("api_url", "https://graph.example.net/v1.0")
    check_base_url("api_url", "http://127.0.0.1:9/v1.0")


def test_every_adapter_config_applies_the_rule() -> None:
    local, evil = "http://127.0.0.1:9/x/", "http://127.0.0.1@evil.example/x/"
    GraphConfig("t", "c", client_secret="s", graph_base_url=local)
    SlackConfig("xoxb-1", "s", frozenset({"C0123ABCD"}), {}, "t", api_url=local)
    TeamsConfig("a", "t", app_password="p", openid_metadata_url=local)
    with pytest.raises(ConfigError):
        GraphConfig("t", "c", client_secret="s", graph_base_url=evil)
    with pytest.raises(ConfigError):
        SlackConfig("xoxb-1", "s", frozenset({"C0123ABCD"}), {}, "t", api_url=evil)
    with pytest.raises(ConfigError):
        TeamsConfig("a", "t", app_password="p", openid_metadata_url=evil)
