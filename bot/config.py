"""Configuration: one frozen settings object, built and validated here and nowhere else.

Sources: a TOML file (``breakglass.toml``; see ``breakglass.example.toml`` and
docs/configuration.md) and the ``BREAKGLASS_*`` environment (:mod:`bot.config_env`; the
environment wins). Both are merged into one document validated by the pydantic model in
:mod:`bot.config_model`, then every adapter config (Graph, Slack, Teams) and the one
identity directory are built from it (:mod:`bot.config_parts`). :func:`check_settings`
returns every problem at once, each naming its TOML path or its variable; :func:`load_settings`
raises the first. With no file at all, the embedded default: SQLite under
``$BREAKGLASS_HOME``, the simulated tenant, the runbook executor and the local console.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.graph import GraphConfig
from adapters.slack import SlackConfig
from adapters.teams import TeamsConfig
from bot.config_env import EnvironmentSource, variable_of
from bot.config_model import SECRET_PATHS, SettingsModel
from bot.config_parts import Parts, build_parts
from engine.access import AccessRules, access_from_config
from engine.errors import ConfigError, ConfigProblems
from engine.identity import Directory
from engine.wpc import TEMPLATES

SIMULATED = "simulated"
GRAPH = "graph"


@dataclass(frozen=True)
class TenantSettings:
    mode: str = SIMULATED
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    certificate_path: str = ""
    certificate_thumbprint: str = ""
    authority_url: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    simulated_url: str = ""  # an already running simulated tenant (the demo's)
    simulated_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class ModelSettings:
    mode: str = "scripted"  # scripted | openai
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    model: str = "breakglass-scripted-sim"
    provider: str = "scripted"
    injected: bool = False  # the scripted model's prompt-injected variant (demo)


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str = field(default="", repr=False)  # may carry a password
    host: str = "127.0.0.1"  # public listener: chat webhooks, /healthz, /readyz
    port: int = 8080
    internal_host: str = "127.0.0.1"  # internal listener: proxy, registry, metrics, console
    internal_port: int | None = None  # None: port + 1 (0, a free port, when port is 0)
    allow_remote_console: bool = False
    public_url: str = ""
    approvers: frozenset[str] = frozenset()
    requesters: frozenset[str] | None = None
    identities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allow_email_match: bool = False
    names: Mapping[str, str] = field(default_factory=dict)
    pending_minutes: int = 60
    max_minutes: int = 60
    notice_every_minutes: int = 5
    rollback_token_minutes: int = 10
    replication_settle_seconds: int = 180
    tenant: TenantSettings = field(default_factory=TenantSettings)
    executor: str = "runbook"  # runbook | agent | openclaw
    model: ModelSettings = field(default_factory=ModelSettings)
    clock_scale: float = 1.0  # demo only: how fast the service's clock runs
    clock_anchor: str = ""  # demo only: the instant both demo processes count from
    clock_file: str = ""  # tests only: the service reads the time from this file
    tick_seconds: float = 2.0
    sweep_seconds: float = 60.0
    console: bool = True
    log_level: str = "info"
    replica_id: str = ""  # "" = replica-<hostname>
    deployment: str = ""
    graph: GraphConfig | None = None  # the real tenant's config (tenant.mode = "graph")
    slack: SlackConfig | None = None
    teams: TeamsConfig | None = None
    directory: Directory = field(default_factory=Directory)  # every chat identity, one place
    notes: tuple[str, ...] = ()  # not errors, but worth a line (ambiguous identities)
    # access rules (issue 17): [templates.*] and [step_up], parsed by engine.access
    access: AccessRules | None = None
    step_up: Mapping[str, Any] = field(default_factory=dict)  # [step_up] minus its secret
    step_up_client_secret: str = field(default="", repr=False)

    @property
    def simulated(self) -> bool:
        return self.tenant.mode == SIMULATED

    @property
    def internal_bind_port(self) -> int:
        if self.internal_port is not None:
            return self.internal_port
        return self.port + 1 if self.port else 0


def load_settings(environ: Mapping[str, str], path: Path | None = None) -> Settings:
    """The settings, or a ConfigError naming the first problem (and how many more)."""
    settings, problems = check_settings(environ, path)
    if settings is None:
        more = len(problems) - 1
        tail = f" (and {more} more: run `breakglass config check`)" if more else ""
        raise ConfigError(problems[0] + tail)
    return settings


def check_settings(
    environ: Mapping[str, str], path: Path | None = None
) -> tuple[Settings | None, list[str]]:
    """Build the settings; return them (None on any problem) and EVERY problem found."""
    source = EnvironmentSource(SettingsModel, environ)
    env = source.values
    problems = list(env.problems)
    home = Path(env.document.get("home") or ".breakglass")
    if path is None and (home / "breakglass.toml").exists():
        path = home / "breakglass.toml"
    document = _read_file(path, problems) if path is not None else {}
    problems += _secrets_in_file(document)
    try:
        model = SettingsModel.model_validate(_merge(document, source()))
    except ValidationError as exc:
        return None, problems + [_describe(error, env.origins) for error in exc.errors()]
    parts = build_parts(model, env.origins)
    problems += parts.problems
    access = None
    try:
        access = access_from_config(model.templates, _step_up(model))
    except ConfigProblems as exc:
        problems += exc.problems
    problems += _no_template_table(model)
    if problems:
        return None, problems
    return _settings(model, parts, access), []


def _read_file(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"cannot read {path}: {exc.strerror}")
    except UnicodeDecodeError:
        problems.append(f"{path} is not UTF-8 text")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path} is not valid TOML: {exc}")
    except ValueError as exc:  # an integer past Python's 4300-digit limit
        problems.append(f"{path} is not usable TOML: {str(exc).split(':')[0]}")
    except RecursionError:
        problems.append(f"{path} is not usable TOML: it nests too deeply")
    return {}


def _secrets_in_file(document: dict[str, Any]) -> list[str]:
    """Refuse (and drop) every secret written into the file: they belong to the environment."""
    problems = []
    for place in SECRET_PATHS:
        table = document.get(place[0])
        if isinstance(table, dict) and place[1] in table:
            del table[place[1]]
            variable = variable_of(place)
            problems.append(
                f"{'.'.join(place)}: a secret must not be written into the file; "
                f"set {variable} or {variable}_FILE instead"
            )
    return problems


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        inner = merged.get(key)
        if isinstance(value, Mapping) and isinstance(inner, dict):
            merged[key] = _merge(inner, value)
        else:
            merged[key] = value
    return merged


def _describe(error: Any, origins: Mapping[tuple[str, ...], str]) -> str:
    """One problem line naming the variable that set the value, else its TOML path."""
    loc = tuple(str(part) for part in error["loc"])
    where = ".".join(loc) or "configuration"
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in origins:
            where = origins[loc[:depth]]
            break
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown {'section' if len(loc) == 1 else 'setting'}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def _settings(model: SettingsModel, parts: Parts, access: AccessRules | None) -> Settings:
    service, policy, tenant, clock = model.service, model.policy, model.tenant, model.clock
    return Settings(
        home=Path(model.home),
        database_url=_reveal(model.database.url),
        **service.model_dump(),  # [service] names its values as Settings does
        approvers=frozenset(policy.approvers),
        requesters=frozenset(policy.requesters) or None,
        identities=parts.identities,
        allow_email_match=model.identities.allow_email_match,
        names=dict(model.names),
        pending_minutes=policy.pending_minutes,
        max_minutes=policy.max_minutes,
        notice_every_minutes=policy.notice_every_minutes,
        rollback_token_minutes=policy.rollback_token_minutes,
        replication_settle_seconds=policy.replication_settle_seconds,
        tenant=TenantSettings(
            **tenant.model_dump(exclude={"client_secret", "simulated_secret"}),
            client_secret=_reveal(tenant.client_secret),
            simulated_secret=_reveal(tenant.simulated_secret),
        ),
        executor=model.executor.mode,
        model=ModelSettings(
            **model.model.model_dump(exclude={"api_key"}), api_key=_reveal(model.model.api_key)
        ),
        clock_scale=clock.scale,
        clock_anchor=clock.anchor,
        clock_file=clock.test_file,
        graph=parts.graph,
        slack=parts.slack,
        teams=parts.teams,
        directory=parts.directory,
        notes=tuple(parts.notes),
        access=access,
        step_up=_step_up(model),
        step_up_client_secret=_reveal(model.step_up.client_secret),
    )


def _no_template_table(model: SettingsModel) -> list[str]:
    """``[step_up]`` without any ``[templates.<name>]``: the engine then refuses every
    request ("template ... is not enabled here"; engine.access), so it is a problem."""
    if not _step_up(model) or model.templates:
        return []
    return [
        "step_up: with [step_up] set, each template that may be requested needs its "
        f"[templates.<name>] table ({', '.join(TEMPLATES)}); there is none, so every request "
        "would be refused (docs/stepup.md)"
    ]


def _step_up(model: SettingsModel) -> dict[str, Any]:
    """``[step_up]`` as given, without its secret (which alone turns nothing on)."""
    return model.step_up.model_dump(exclude_none=True, exclude={"client_secret"})


def _reveal(secret: Any) -> str:
    return "" if secret is None else str(secret.get_secret_value())
