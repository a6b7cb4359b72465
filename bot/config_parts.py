"""What the settings model builds: the Graph, Slack and Teams adapter configs, the one
identity directory every chat platform resolves people through, and the cross-field checks.

Every problem names the variable that set the value when the environment did, else its TOML
path; building goes on after a problem so that ``config check`` reports all of them at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from adapters.graph import CertificateCredential, GraphConfig
from adapters.graph.simulated.directory import default_seed
from adapters.loopback import check_base_url
from adapters.slack import SlackConfig
from adapters.teams import TeamsConfig
from bot.config_env import variable_of
from bot.config_model import SECRET_PATHS, Principals, SettingsModel
from engine.errors import ConfigError
from engine.identity import Directory

T = TypeVar("T")
Origins = Mapping[tuple[str, ...], str]
SIMULATED_TENANT_ID = str(default_seed()["tenantId"])


@dataclass
class Parts:
    graph: GraphConfig | None = None
    slack: SlackConfig | None = None
    teams: TeamsConfig | None = None
    directory: Directory = field(default_factory=Directory)
    identities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def build_parts(model: SettingsModel, origins: Origins) -> Parts:
    parts = Parts()
    names = _Namer(origins)
    parts.problems += _service_problems(model, names)
    parts.graph = _attempt(parts, "tenant", lambda: _graph(model, names))
    parts.problems += _policy_problems(model)
    _directory(model, parts)
    parts.slack = _attempt(parts, "slack", lambda: _slack(model, parts.directory, names))
    if parts.slack is not None and not parts.slack.workspace_bound:
        parts.notes.append(_any_workspace_note(names))
    parts.teams = _attempt(parts, "teams", lambda: _teams(model, parts.directory, names))
    if parts.slack is not None:
        parts.notes += _approver_reach("slack", parts.slack.approver_user_ids, model, names)
    if parts.teams is not None:
        parts.notes += _approver_reach("teams", parts.teams.approvers, model, names)
    return parts


def _approver_reach(
    chat: str, approvers: Mapping[str, str], model: SettingsModel, names: _Namer
) -> list[str]:
    """What makes a job requested in ``chat`` unable to get its two approvals there: fewer
    than two of the approver group mapped, or a mapped "approver" outside the group."""
    group = set(model.policy.approvers)
    if not group:  # the simulated default's people: mapped by its own seed
        return []
    where = names(chat, "approvers")
    notes = [
        f"{chat}: {user} maps to {principal}, who is not in policy.approvers; {where} gives "
        "no right to approve, so that person's approvals are refused"
        for user, principal in sorted(approvers.items())
        if principal not in group
    ]
    reachable = sorted({p for p in approvers.values() if p in group})
    if len(reachable) < 2:
        notes.append(
            f"{chat}: {where} maps {len(reachable)} of policy.approvers; every job needs two "
            f"approvers, so a job requested in {chat} cannot be approved there"
        )
    return notes


class _Namer:
    """``tenant.tenant_id (or BREAKGLASS_TENANT_ID)``, or just the variable when it set it;
    a secret only by its variable (``BREAKGLASS_SLACK_BOT_TOKEN (or _FILE)``): the file may
    not hold one."""

    def __init__(self, origins: Origins) -> None:
        self.origins = origins

    def __call__(self, *place: str) -> str:
        if place in self.origins:
            return self.origins[place]
        variable = variable_of(place)
        path = ".".join(place)
        if variable and place in SECRET_PATHS:
            return f"{variable} (or _FILE)"
        return f"{path} (or {variable})" if variable else path


def _attempt(parts: Parts, section: str, build: Callable[[], T]) -> T | None:
    try:
        return build()
    except ConfigError as err:
        parts.problems.append(f"{section}: {err}")
        return None


def _existing(name: str, path: str) -> Path:
    """A credential file must be there at start, not at the first call that needs it."""
    if not Path(path).is_file():
        raise ConfigError(f"{name}: no file at {path}")
    return Path(path)


def _service_problems(model: SettingsModel, names: _Namer) -> list[str]:
    service, problems = model.service, []
    if not is_loopback_host(service.internal_host) and not service.allow_remote_console:
        problems.append(
            f"service.internal_host: {service.internal_host} is not loopback; the internal "
            "listener carries the console (no login) and the model proxy: bind it to "
            "127.0.0.1, or set service.allow_remote_console = true to allow it"
        )
    urls = [(("service", "public_url"), service.public_url)]
    if model.model.mode == "openai":
        if not model.model.base_url:
            problems.append('model.base_url is required when model.mode = "openai"')
        urls.append((("model", "base_url"), model.model.base_url))
    for place, url in urls:
        try:
            if url:
                check_base_url(names(*place), url)  # cleartext http only on loopback
        except ConfigError as err:
            problems.append(str(err))
    return problems


def _policy_problems(model: SettingsModel) -> list[str]:
    approvers = set(model.policy.approvers)
    simulated_default = model.tenant.mode == "simulated" and not approvers
    if simulated_default or len(approvers) >= 2:
        return []
    return [
        f"policy.approvers names {len(approvers)} distinct approver(s): every job needs two "
        "approvals from two different people, so at least two are required"
    ]


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tenant_id_of(model: SettingsModel) -> str:
    return model.tenant.tenant_id or SIMULATED_TENANT_ID


def _graph(model: SettingsModel, names: _Namer) -> GraphConfig | None:
    tenant = model.tenant
    if tenant.mode != "graph":
        if tenant.simulated_url and tenant.simulated_secret is None:
            # Without it the service starts and every tenant call fails (401 invalid_client).
            raise ConfigError(
                "BREAKGLASS_SIMULATED_CLIENT_SECRET (or _FILE) required with tenant.simulated_url"
            )
        return None
    missing = [names("tenant", k) for k in ("tenant_id", "client_id") if not getattr(tenant, k)]
    if missing:
        raise ConfigError(f'{" and ".join(missing)} required when tenant.mode = "graph"')
    if tenant.client_secret is None and not tenant.certificate_path:
        raise ConfigError(
            "set BREAKGLASS_GRAPH_CLIENT_SECRET (or _FILE) or tenant.certificate_path"
        )
    certificate = (
        CertificateCredential(
            _existing(names("tenant", "certificate_path"), tenant.certificate_path),
            tenant.certificate_thumbprint,
        )
        if tenant.certificate_path
        else None
    )
    return GraphConfig(
        tenant_id=tenant.tenant_id,
        client_id=tenant.client_id,
        client_secret=None if certificate else _reveal(tenant.client_secret),
        certificate=certificate,
        authority_base_url=tenant.authority_url,
        graph_base_url=tenant.graph_url,
    )


def _directory(model: SettingsModel, parts: Parts) -> None:
    """One directory from [identities.map], Slack's and Teams' people; ambiguity denies."""
    merged: dict[str, list[str]] = {}
    sources: list[tuple[str, Mapping[str, Principals]]] = [
        ("", model.identities.map),
        ("slack:", model.slack.approvers),
        ("slack:", model.slack.requesters),
        ("teams:", model.teams.approvers),
        ("teams:", model.teams.requesters),
    ]
    if not model.identities.map and model.tenant.mode == "simulated":
        sources.append(("console:", simulated_people()))  # the embedded default's people
    for prefix, mapping in sources:
        for user, principals in mapping.items():
            values = [principals] if isinstance(principals, str) else principals
            known = merged.setdefault(prefix + user, [])
            known += [p for p in values if p not in known]
    parts.identities = {
        k: (v,) if isinstance(v, str) else tuple(v) for k, v in model.identities.map.items()
    }
    for identity, principals in sorted(merged.items()):
        if len(principals) > 1:
            parts.notes.append(
                f"{identity[:80]} maps to {len(principals)} principals: it is denied everywhere"
            )
    parts.directory = Directory(merged, {}, model.identities.allow_email_match)


def simulated_people() -> dict[str, str]:
    """The simulated seed's users by first name (the embedded default's console people)."""
    return {u["displayName"].split()[0].lower(): u["id"] for u in default_seed()["users"]}


def _unambiguous(
    directory: Directory, prefix: str, mapping: Mapping[str, Principals]
) -> dict[str, str]:
    """The users whose identity resolves to exactly one principal (adapters ask only them)."""
    out: dict[str, str] = {}
    for user in mapping:
        principal = directory.resolve(prefix + user).principal
        if principal is not None:
            out[user] = principal
    return out


def _slack(model: SettingsModel, directory: Directory, names: _Namer) -> SlackConfig | None:
    slack = model.slack
    if not slack.model_fields_set:
        return None
    missing = [names("slack", k) for k in ("bot_token", "signing_secret") if not _has(slack, k)]
    if missing:
        raise ConfigError(f"Slack is half-configured: {' and '.join(missing)} not set")
    if not slack.incident_channels:
        raise ConfigError(f"{names('slack', 'incident_channels')}: name at least one channel")
    return SlackConfig(
        bot_token=_reveal(slack.bot_token),
        signing_secret=_reveal(slack.signing_secret),
        incident_channels=frozenset(slack.incident_channels),
        approver_user_ids=_unambiguous(directory, "slack:", slack.approvers),
        requesters=_unambiguous(directory, "slack:", slack.requesters),
        tenant_id=tenant_id_of(model),
        api_url=slack.api_url,
        app_token=_reveal(slack.app_token) or None,
        identities=directory,
        team_id=slack.team_id or None,
        enterprise_id=slack.enterprise_id or None,
    )


def _any_workspace_note(names: _Namer) -> str:
    # Another workspace of the same Slack app signs with the same secret: only an id tells.
    return (
        "slack: requests are accepted from any workspace that shares the signing secret; "
        f"to serve only yours, set {names('slack', 'team_id')}, and on Enterprise Grid "
        f"{names('slack', 'enterprise_id')}"
    )


def _teams(model: SettingsModel, directory: Directory, names: _Namer) -> TeamsConfig | None:
    teams = model.teams
    if not teams.model_fields_set:
        return None
    missing = [names("teams", k) for k in ("app_id", "tenant_id") if not getattr(teams, k)]
    if teams.app_password is None and not teams.cert_path and not teams.dev_disable_auth:
        missing.append(f"{names('teams', 'app_password')} or {names('teams', 'cert_path')}")
    if missing:
        raise ConfigError(f"Teams is half-configured: {' and '.join(missing)} not set")
    optional = {
        "openid_metadata_url": teams.openid_metadata_url,
        "allowed_issuers": tuple(teams.allowed_issuers),
        "token_authority": teams.token_authority,
    }
    return TeamsConfig(
        app_id=teams.app_id,
        tenant_id=teams.tenant_id,
        app_password=_reveal(teams.app_password) or None,
        certificate_path=(
            _existing(names("teams", "cert_path"), teams.cert_path) if teams.cert_path else None
        ),
        incident_conversations=frozenset(teams.incident_conversations),
        approvers=_unambiguous(directory, "teams:", teams.approvers),
        requesters=_unambiguous(directory, "teams:", teams.requesters),
        dev_disable_auth=teams.dev_disable_auth,
        **{k: v for k, v in optional.items() if v},  # type: ignore[arg-type]
    )


def _has(section: object, key: str) -> bool:
    return getattr(section, key) is not None


def _reveal(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()
