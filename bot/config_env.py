"""The environment's part of the settings: which ``BREAKGLASS_*`` variable sets which setting.

Every secret may be given as ``NAME`` or as ``NAME_FILE`` naming a file that holds it (Docker
and Kubernetes secrets). Lists are comma-separated; people are ``user=principal`` pairs.
A problem is reported under the variable's name, never with its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

Path_ = tuple[str, ...]

TEXT, SECRET, LIST, PAIRS = "text", "secret", "list", "pairs"

# variable -> (place in the settings document, how its text is read)
VARIABLES: dict[str, tuple[Path_, str]] = {
    "BREAKGLASS_HOME": (("home",), TEXT),
    "BREAKGLASS_LOG_LEVEL": (("service", "log_level"), TEXT),
    "BREAKGLASS_REPLICA_ID": (("service", "replica_id"), TEXT),
    "BREAKGLASS_DEPLOYMENT": (("service", "deployment"), TEXT),
    "BREAKGLASS_DATABASE_URL": (("database", "url"), SECRET),
    "BREAKGLASS_TENANT_ID": (("tenant", "tenant_id"), TEXT),
    "BREAKGLASS_GRAPH_CLIENT_SECRET": (("tenant", "client_secret"), SECRET),
    "BREAKGLASS_SIMULATED_CLIENT_SECRET": (("tenant", "simulated_secret"), SECRET),
    "BREAKGLASS_MODEL_API_KEY": (("model", "api_key"), SECRET),
    "BREAKGLASS_TEST_CLOCK_FILE": (("clock", "test_file"), TEXT),
    "BREAKGLASS_SLACK_BOT_TOKEN": (("slack", "bot_token"), SECRET),
    "BREAKGLASS_SLACK_SIGNING_SECRET": (("slack", "signing_secret"), SECRET),
    "BREAKGLASS_SLACK_APP_TOKEN": (("slack", "app_token"), SECRET),
    "BREAKGLASS_SLACK_API_URL": (("slack", "api_url"), TEXT),
    "BREAKGLASS_SLACK_INCIDENT_CHANNELS": (("slack", "incident_channels"), LIST),
    "BREAKGLASS_SLACK_APPROVERS": (("slack", "approvers"), PAIRS),
    "BREAKGLASS_SLACK_REQUESTERS": (("slack", "requesters"), PAIRS),
    "BREAKGLASS_SLACK_TEAM_ID": (("slack", "team_id"), TEXT),
    "BREAKGLASS_SLACK_ENTERPRISE_ID": (("slack", "enterprise_id"), TEXT),
    "BREAKGLASS_TEAMS_APP_ID": (("teams", "app_id"), TEXT),
    "BREAKGLASS_TEAMS_TENANT_ID": (("teams", "tenant_id"), TEXT),
    "BREAKGLASS_TEAMS_APP_PASSWORD": (("teams", "app_password"), SECRET),
    "BREAKGLASS_TEAMS_CERT_PATH": (("teams", "cert_path"), TEXT),
    "BREAKGLASS_TEAMS_OPENID_METADATA_URL": (("teams", "openid_metadata_url"), TEXT),
    "BREAKGLASS_TEAMS_ALLOWED_ISSUERS": (("teams", "allowed_issuers"), LIST),
    "BREAKGLASS_TEAMS_TOKEN_AUTHORITY": (("teams", "token_authority"), TEXT),
    "BREAKGLASS_TEAMS_INCIDENT_CONVERSATIONS": (("teams", "incident_conversations"), LIST),
    "BREAKGLASS_TEAMS_APPROVERS": (("teams", "approvers"), PAIRS),
    "BREAKGLASS_TEAMS_REQUESTERS": (("teams", "requesters"), PAIRS),
    "BREAKGLASS_TEAMS_DEV_DISABLE_AUTH": (("teams", "dev_disable_auth"), TEXT),
    "BREAKGLASS_STEPUP_CLIENT_SECRET": (("step_up", "client_secret"), SECRET),
}


def variable_of(path: Path_) -> str | None:
    """The variable that sets ``path`` (for naming it in a problem), if any."""
    for name, (place, _kind) in VARIABLES.items():
        if place == path:
            return name
    return None


@dataclass
class EnvironmentValues:
    """The settings the environment gives, nested like the TOML, and what went wrong."""

    document: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path_, str] = field(default_factory=dict)  # place -> variable name
    problems: list[str] = field(default_factory=list)


class EnvironmentSource(PydanticBaseSettingsSource):
    """A pydantic-settings source reading a given mapping (never ``os.environ`` itself)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.values = read_environment(environ)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.document.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.values.document


def read_environment(environ: Mapping[str, str]) -> EnvironmentValues:
    out = EnvironmentValues()
    for name, (place, kind) in VARIABLES.items():
        text = _raw(environ, name, kind, out.problems)
        if text is None:
            continue
        value = _parse(name, text, kind, out)
        if value is not None:
            _put(out.document, place, value)
            out.origins[place] = name
    return out


def _raw(environ: Mapping[str, str], name: str, kind: str, problems: list[str]) -> str | None:
    """The variable's text; for a secret, ``NAME`` or else the file ``NAME_FILE`` names."""
    value = environ.get(name, "").strip()
    if value:
        return value
    path = environ.get(f"{name}_FILE", "").strip() if kind == SECRET else ""
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        problems.append(f"{name}_FILE: cannot read {path}: {exc.strerror or type(exc).__name__}")
    except UnicodeDecodeError:
        problems.append(f"{name}_FILE: {path} is not UTF-8 text")
    return None


def _parse(name: str, text: str, kind: str, out: EnvironmentValues) -> Any:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if kind == LIST:
        return items
    if kind != PAIRS:
        return text
    # A user named twice keeps every principal: the directory then denies them (ambiguous).
    pairs: dict[str, list[str]] = {}
    for item in items:
        user, sep, principal = item.partition("=")
        user, principal = user.strip(), principal.strip()
        if not sep or not user or not principal:
            out.problems.append(f"{name}: expected user=principal, got {item[:40]!r}")
            continue
        pairs.setdefault(user, []).append(principal)
    return pairs


def _put(document: dict[str, Any], place: Path_, value: Any) -> None:
    table = document
    for key in place[:-1]:
        table = table.setdefault(key, {})
    table[place[-1]] = value
