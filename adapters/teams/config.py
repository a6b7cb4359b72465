"""Configuration of the Microsoft Teams adapter: one frozen object, validated on construction.

Teams is enabled when an app id is configured. Inbound authentication can be switched off only
by ``dev_disable_auth=True`` (logged loudly at startup), never by leaving something out: a
config without an app id cannot be built at all. Secrets stay out of ``repr``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from adapters.loopback import check_base_url
from engine.errors import ConfigError

BOT_FRAMEWORK_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
ENV_PREFIX = "BREAKGLASS_TEAMS_"
_TRUE = {"1", "true"}
_FALSE = {"", "0", "false"}


@dataclass(frozen=True)
class TeamsConfig:
    """One single-tenant Azure Bot registration and who may do what through it.

    ``approvers`` and ``requesters`` map a Teams user id (the Entra ``aadObjectId`` or the
    ``29:...`` Teams user id) to exactly one directory principal. Only ``29:...`` ids can go
    into a card's ``refresh.userIds``; see docs/teams.md.
    """

    app_id: str
    tenant_id: str
    app_password: str | None = field(default=None, repr=False)
    certificate_path: Path | None = None  # PFX file of the app's certificate
    openid_metadata_url: str = BOT_FRAMEWORK_OPENID_URL
    allowed_issuers: tuple[str, ...] = (BOT_FRAMEWORK_ISSUER,)
    incident_conversations: frozenset[str] = frozenset()
    approvers: Mapping[str, str] = field(default_factory=dict)
    requesters: Mapping[str, str] = field(default_factory=dict)
    dev_disable_auth: bool = False
    # The authority the bot's OUTBOUND token comes from; None: the SDK's public-cloud default.
    # Sovereign clouds set it (e.g. https://login.microsoftonline.us/<tenant>).
    token_authority: str | None = None

    def __post_init__(self) -> None:
        if not self.app_id.strip() or not self.tenant_id.strip():
            raise ConfigError("Teams needs app_id and tenant_id (single-tenant app registration)")
        has_password, has_cert = bool(self.app_password), self.certificate_path is not None
        if has_password and has_cert:
            raise ConfigError("give one Teams credential: app_password or certificate_path")
        if not (has_password or has_cert or self.dev_disable_auth):
            raise ConfigError("Teams needs app_password or certificate_path")
        check_base_url("openid_metadata_url", self.openid_metadata_url)
        if self.token_authority is not None:
            check_base_url("token_authority", self.token_authority)
        if not self.allowed_issuers or not all(i.strip() for i in self.allowed_issuers):
            raise ConfigError("allowed_issuers must name at least one issuer")
        object.__setattr__(
            self, "incident_conversations", _conversations(self.incident_conversations)
        )
        object.__setattr__(self, "approvers", _people("approvers", self.approvers))
        object.__setattr__(self, "requesters", _people("requesters", self.requesters))
        for user, principal in self.requesters.items():
            if self.approvers.get(user, principal) != principal:
                raise ConfigError(f"Teams user {user[:64]} maps to two different principals")

    def directory_entries(self) -> dict[str, list[str]]:
        """Chat identities (``teams:<user id>``) for ``engine.identity.Directory``."""
        merged = {**self.requesters, **self.approvers}
        return {f"teams:{user}": [principal] for user, principal in merged.items()}

    def is_incident(self, conversation_id: str) -> bool:
        return conversation_base(conversation_id) in self.incident_conversations

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TeamsConfig | None:
        """The config from ``BREAKGLASS_TEAMS_*`` values in ``environ``; None without an app id."""
        app_id = _get(environ, "APP_ID")
        if not app_id:
            return None
        cert = _get(environ, "CERT_PATH")
        return cls(
            app_id=app_id,
            tenant_id=_get(environ, "TENANT_ID"),
            app_password=_get(environ, "APP_PASSWORD") or None,
            certificate_path=Path(cert) if cert else None,
            openid_metadata_url=_get(environ, "OPENID_METADATA_URL") or BOT_FRAMEWORK_OPENID_URL,
            allowed_issuers=_list(_get(environ, "ALLOWED_ISSUERS")) or (BOT_FRAMEWORK_ISSUER,),
            incident_conversations=frozenset(_list(_get(environ, "INCIDENT_CONVERSATIONS"))),
            approvers=_pairs("APPROVERS", _get(environ, "APPROVERS")),
            requesters=_pairs("REQUESTERS", _get(environ, "REQUESTERS")),
            dev_disable_auth=_flag("DEV_DISABLE_AUTH", _get(environ, "DEV_DISABLE_AUTH")),
            token_authority=_get(environ, "TOKEN_AUTHORITY") or None,
        )


def conversation_base(conversation_id: str) -> str:
    """A channel thread's id without its ``;messageid=...`` suffix: the channel itself."""
    return conversation_id.split(";", 1)[0].strip()


def _conversations(ids: Iterable[str]) -> frozenset[str]:
    return frozenset(conversation_base(i) for i in ids if i.strip())


def _people(name: str, mapping: Mapping[str, str]) -> Mapping[str, str]:
    cleaned: dict[str, str] = {}
    for user, principal in mapping.items():
        if not isinstance(user, str) or not user.strip():
            raise ConfigError(f"{name}: a Teams user id is empty")
        if not isinstance(principal, str) or not principal.strip():
            raise ConfigError(f"{name}: Teams user {user[:64]} maps to no principal")
        cleaned[user.strip()] = principal.strip()
    return MappingProxyType(cleaned)


def _get(environ: Mapping[str, str], name: str) -> str:
    return environ.get(ENV_PREFIX + name, "").strip()


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _pairs(name: str, value: str) -> dict[str, str]:
    """``user=principal,user=principal`` (Teams ids contain ':', so '=' separates)."""
    pairs: dict[str, str] = {}
    for item in _list(value):
        user, sep, principal = item.partition("=")
        if not sep:
            raise ConfigError(f"{ENV_PREFIX}{name}: expected user=principal, got {item[:64]!r}")
        pairs[user.strip()] = principal.strip()
    return pairs


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{ENV_PREFIX}{name} must be true or false")
