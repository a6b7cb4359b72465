"""Configuration of the Slack adapter: one frozen object, validated on construction.

``bot/`` builds it from the service's settings (bot/config_parts.py); nothing here reads
the environment. Secrets are kept out of ``repr`` so a logged config never shows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.loopback import check_base_url
from engine.errors import ConfigError
from engine.identity import Directory

DEFAULT_API_URL = "https://slack.com/api/"
COMMAND = "/breakglass"
PLATFORM = "slack"

USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,31}")
TEAM_ID = re.compile(r"T[A-Z0-9]{2,31}")
ENTERPRISE_ID = re.compile(r"E[A-Z0-9]{2,31}")


def chat_identity(user_id: str) -> str:
    """The engine's name for a Slack user (``Actor.chat_identity``)."""
    return f"{PLATFORM}:{user_id}"


@dataclass(frozen=True)
class SlackConfig:
    """One Slack workspace (or Enterprise Grid org) and who may do what in it.

    ``approver_user_ids`` and ``requesters`` map Slack user ids to directory principals; an
    empty ``requesters`` lets anyone in an incident channel request (they still need a
    principal: an approver, or an entry in ``requesters``). In seconds: ``timeout`` bounds each
    Web API call, ``max_retry_after`` how long a 429 may be waited out in place, and
    ``deliver_budget`` one whole delivery; past them the event goes to the outbox instead, so
    a slow Slack holds a job's next command (its lock) only that long. ``team_id`` and
    ``enterprise_id``, when set, are the only workspace and Enterprise Grid org served
    (``binding.workspace_gate``).
    """

    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    incident_channels: frozenset[str]
    approver_user_ids: Mapping[str, str]
    tenant_id: str
    requesters: Mapping[str, str] = field(default_factory=dict)
    api_url: str = DEFAULT_API_URL
    app_token: str | None = field(default=None, repr=False)  # Socket Mode (xapp-...)
    command: str = COMMAND
    timeout: float = 5.0
    max_retry_after: float = 2.0
    deliver_budget: float = 10.0
    identities: Directory | None = None  # the service's one directory (all platforms)
    # The one workspace / Enterprise Grid org served; None: any that shares the signing secret.
    team_id: str | None = None
    enterprise_id: str | None = None

    def __post_init__(self) -> None:
        if not self.bot_token.strip() or not self.signing_secret.strip():
            raise ConfigError("the Slack bot token and signing secret are required")
        if not self.tenant_id.strip():
            raise ConfigError("tenant_id is required")
        if not self.incident_channels:
            raise ConfigError("name at least one Slack incident channel")
        for channel in self.incident_channels:
            _check(CHANNEL_ID, channel, "incident channel id")
        for user in (*self.approver_user_ids, *self.requesters):
            _check(USER_ID, user, "Slack user id")
        if self.team_id is not None:
            _check(TEAM_ID, self.team_id, "team_id")
        if self.enterprise_id is not None:
            _check(ENTERPRISE_ID, self.enterprise_id, "enterprise_id")
        if not self.command.startswith("/") or len(self.command) < 2:
            raise ConfigError("the slash command must start with /")
        if min(self.timeout, self.deliver_budget) <= 0 or self.max_retry_after < 0:
            raise ConfigError("timeouts must be positive and max_retry_after not negative")
        check_base_url("api_url", self.api_url)

    @property
    def api_base(self) -> str:
        """``api_url`` with the trailing slash slack_sdk expects."""
        return self.api_url.rstrip("/") + "/"

    def directory(self) -> Directory:
        """Slack user → principal, exactly: a user mapped to two principals resolves to none.

        The service's directory when given (the TOML ``[identities]`` and every platform's
        people in one place), else one from this config's own people."""
        if self.identities is not None:
            return self.identities
        merged: dict[str, list[str]] = {}
        for mapping in (self.approver_user_ids, self.requesters):
            for user, principal in mapping.items():
                merged.setdefault(chat_identity(user), []).append(principal)
        return Directory(by_chat_identity=merged)

    def slack_users_of(self, principal: str) -> list[str]:
        """The approvers' Slack user ids that act for ``principal`` (whom to ask)."""
        return sorted(u for u, p in self.approver_user_ids.items() if p == principal)

    @property
    def workspace_bound(self) -> bool:
        """Whether inbound requests are limited to one team or Enterprise Grid org."""
        return self.team_id is not None or self.enterprise_id is not None

    def may_request(self, user_id: str) -> bool:
        return not self.requesters or user_id in self.requesters


def _check(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise ConfigError(f"{what} {value[:40]!r} is malformed")
