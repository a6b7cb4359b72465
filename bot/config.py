"""Configuration: one frozen settings object, built and validated here and nowhere else.

Sources: a TOML file (``breakglass.toml``; see ``breakglass.example.toml``) and the
environment for the home, the database and every secret (``*_FILE`` variants read a secret
from a file). With no file at all, the embedded default: SQLite under ``$BREAKGLASS_HOME``,
the simulated tenant, the runbook executor and the local console channel.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.access import AccessRules, access_from_config
from engine.errors import ConfigError

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
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
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
    tenant: TenantSettings = field(default_factory=TenantSettings)
    executor: str = "runbook"  # runbook | agent
    model: ModelSettings = field(default_factory=ModelSettings)
    clock_scale: float = 1.0  # demo only: how fast the service's clock runs
    clock_anchor: str = ""  # demo only: the instant both demo processes count from
    tick_seconds: float = 2.0
    sweep_seconds: float = 60.0
    console: bool = True
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    # --- access rules (issue 17): [templates.*] and [step_up], parsed by engine.access
    access: AccessRules | None = None
    step_up: Mapping[str, Any] = field(default_factory=dict)  # raw [step_up] (sign-in client)

    @property
    def simulated(self) -> bool:
        return self.tenant.mode == SIMULATED


def _secret(environ: Mapping[str, str], name: str) -> str:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    if environ.get(name):
        return environ[name]
    path = environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc
    return ""


def _table(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _int(table: Mapping[str, Any], where: str, key: str, default: int, low: int, high: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}.{key} must be a whole number from {low} to {high}")
    return value


def _strings(table: Mapping[str, Any], where: str, key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key} must be a list of non-empty strings")
    return value


def _str(table: Mapping[str, Any], where: str, key: str, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string")
    return value


def read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_settings(environ: Mapping[str, str], path: Path | None = None) -> Settings:
    """Build and validate the settings; every problem is a ConfigError naming the field."""
    home = Path(environ.get("BREAKGLASS_HOME") or ".breakglass")
    if path is None and (home / "breakglass.toml").exists():
        path = home / "breakglass.toml"
    doc = read_file(path) if path is not None else {}
    unknown = set(doc) - {
        "service",
        "policy",
        "identities",
        "names",
        "tenant",
        "executor",
        "model",
        "clock",
        "templates",  # issue 17: target limits, step-up, prerequisites
        "step_up",
    }
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    service, policy = _table(doc, "service"), _table(doc, "policy")
    identities = _table(doc, "identities")
    settings = Settings(
        home=home,
        database_url=environ.get("BREAKGLASS_DATABASE_URL", "")
        or _secret(environ, "BREAKGLASS_DATABASE_URL"),
        host=_str(service, "service", "host", "127.0.0.1"),
        port=_int(service, "service", "port", 8080, 0, 65535),
        public_url=_str(service, "service", "public_url"),
        approvers=frozenset(_strings(policy, "policy", "approvers")),
        requesters=frozenset(_strings(policy, "policy", "requesters")) or None,
        identities=_identity_map(identities),
        allow_email_match=bool(identities.get("allow_email_match", False)),
        names={str(k): str(v) for k, v in _table(doc, "names").items()},
        pending_minutes=_int(policy, "policy", "pending_minutes", 60, 1, 1440),
        max_minutes=_int(policy, "policy", "max_minutes", 60, 1, 480),
        notice_every_minutes=_int(policy, "policy", "notice_every_minutes", 5, 1, 60),
        rollback_token_minutes=_int(policy, "policy", "rollback_token_minutes", 10, 1, 60),
        tenant=_tenant(_table(doc, "tenant"), environ),
        executor=_choice(
            _table(doc, "executor"), "executor", "mode", ("runbook", "agent"), "runbook"
        ),
        model=_model(_table(doc, "model"), environ),
        clock_scale=_scale(_table(doc, "clock")),
        clock_anchor=_str(_table(doc, "clock"), "clock", "anchor"),
        tick_seconds=_seconds(service, "tick_seconds", 2.0),
        environ=dict(environ),
        access=access_from_config(_table(doc, "templates"), _table(doc, "step_up")),
        step_up=dict(_table(doc, "step_up")),
    )
    return settings


def _choice(
    table: Mapping[str, Any], where: str, key: str, allowed: tuple[str, ...], default: str
) -> str:
    value = table.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{where}.{key} must be one of {', '.join(allowed)}")
    return str(value)


def _identity_map(table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    raw = table.get("map", {})
    if not isinstance(raw, Mapping):
        raise ConfigError("[identities.map] must be a table of chat identity = principal id(s)")
    out: dict[str, tuple[str, ...]] = {}
    for identity, principals in raw.items():
        values = [principals] if isinstance(principals, str) else principals
        if not isinstance(values, list) or not all(isinstance(p, str) and p for p in values):
            raise ConfigError(f"identities.map.{identity} must be a principal id or a list of them")
        out[str(identity)] = tuple(values)
    return out


def _tenant(table: Mapping[str, Any], environ: Mapping[str, str]) -> TenantSettings:
    mode = _choice(table, "tenant", "mode", (SIMULATED, GRAPH), SIMULATED)
    tenant = TenantSettings(
        mode=mode,
        tenant_id=_str(table, "tenant", "tenant_id"),
        client_id=_str(table, "tenant", "client_id"),
        client_secret=_secret(environ, "BREAKGLASS_GRAPH_CLIENT_SECRET"),
        certificate_path=_str(table, "tenant", "certificate_path"),
        certificate_thumbprint=_str(table, "tenant", "certificate_thumbprint"),
        authority_url=_str(table, "tenant", "authority_url", TenantSettings.authority_url),
        graph_url=_str(table, "tenant", "graph_url", TenantSettings.graph_url),
        simulated_url=_str(table, "tenant", "simulated_url"),
        simulated_secret=_secret(environ, "BREAKGLASS_SIMULATED_CLIENT_SECRET"),
    )
    if mode == GRAPH:
        for key in ("tenant_id", "client_id"):
            if not getattr(tenant, key):
                raise ConfigError(f'tenant.{key} is required when tenant.mode = "graph"')
        if not tenant.client_secret and not tenant.certificate_path:
            raise ConfigError(
                "tenant: set BREAKGLASS_GRAPH_CLIENT_SECRET (or _FILE) or tenant.certificate_path"
            )
    return tenant


def _model(table: Mapping[str, Any], environ: Mapping[str, str]) -> ModelSettings:
    mode = _choice(table, "model", "mode", ("scripted", "openai"), "scripted")
    model = ModelSettings(
        mode=mode,
        base_url=_str(table, "model", "base_url"),
        api_key=_secret(environ, "BREAKGLASS_MODEL_API_KEY"),
        model=_str(table, "model", "model", ModelSettings.model),
        provider=_str(table, "model", "provider", ModelSettings.provider),
        injected=bool(table.get("injected", False)),
    )
    if mode == "openai" and not model.base_url:
        raise ConfigError('model.base_url is required when model.mode = "openai"')
    return model


def _seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.05 <= value <= 60:
        raise ConfigError(f"service.{key} must be a number of seconds from 0.05 to 60")
    return float(value)


def _scale(table: Mapping[str, Any]) -> float:
    value = table.get("scale", 1)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 600:
        raise ConfigError("clock.scale must be a number from 1 to 600 (demo only)")
    return float(value)
