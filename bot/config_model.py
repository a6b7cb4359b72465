"""The settings model: every section of ``breakglass.toml`` and every ``BREAKGLASS_*``
variable, validated by pydantic with ``extra="forbid"`` at every level.

The TOML file and the environment are merged into one document (the environment wins; see
:mod:`bot.config_env`) and validated here once. Secrets are ``SecretStr`` and come only from
the environment (``NAME`` or ``NAME_FILE``); a secret written into the file is refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

Minutes = Annotated[int, Field(strict=True)]
Principals = str | list[str]
LOG_LEVELS = ("debug", "info", "warning", "error")
SCALE_MIN, SCALE_MAX = 1, 600  # [clock] scale (the demo's --speed)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSection(Section):
    host: str = "127.0.0.1"  # the public listener: chat webhooks, /healthz, /readyz
    port: int = Field(default=8080, ge=0, le=65535, strict=True)
    internal_host: str = "127.0.0.1"  # model proxy, registry write, /metrics, console
    internal_port: int | None = Field(default=None, ge=0, le=65535, strict=True)  # port + 1
    allow_remote_console: bool = False  # the console names who acts and has no login
    public_url: str = ""
    tick_seconds: float = Field(default=2.0, ge=0.05, le=60)
    sweep_seconds: float = Field(default=60.0, ge=0.05, le=3600)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Several replicas over one database (docs/operations.md): each needs its own replica_id
    # (default: replica-<hostname>); deployment marks our grants so another deployment's sweep
    # on the same tenant leaves them alone.
    replica_id: str = Field(default="", max_length=128)
    deployment: str = Field(
        default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$"
    )  # Rust regex: $ is the very end


class DatabaseSection(Section):
    url: SecretStr | None = None  # secret: it may carry a password


class PolicySection(Section):
    approvers: list[Annotated[str, Field(min_length=1)]] = []
    requesters: list[Annotated[str, Field(min_length=1)]] = []
    pending_minutes: Minutes = Field(default=60, ge=1, le=1440)
    max_minutes: Minutes = Field(default=60, ge=1, le=480)
    notice_every_minutes: Minutes = Field(default=5, ge=1, le=60)
    rollback_token_minutes: Minutes = Field(default=10, ge=1, le=60)
    # Seconds a rollback that never saw its job's write keeps reading before it believes
    # the write absent (Entra is eventually consistent); inside the 8-minute rollback budget.
    replication_settle_seconds: int = Field(default=180, ge=0, le=300)


class IdentitiesSection(Section):
    allow_email_match: bool = False
    map: dict[str, Principals] = {}


class TenantSection(Section):
    mode: Literal["simulated", "graph"] = "simulated"
    tenant_id: str = ""
    client_id: str = ""
    client_secret: SecretStr | None = None
    certificate_path: str = ""
    certificate_thumbprint: str = ""
    authority_url: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    simulated_url: str = ""  # an already running simulated tenant (the demo's)
    simulated_secret: SecretStr | None = None


class ExecutorSection(Section):
    mode: Literal["runbook", "agent", "openclaw"] = "runbook"


class ModelSection(Section):
    mode: Literal["scripted", "openai"] = "scripted"
    base_url: str = ""
    api_key: SecretStr | None = None
    model: str = "breakglass-scripted-sim"
    provider: str = "scripted"
    injected: bool = False  # the scripted model's prompt-injected variant (demo)


class ClockSection(Section):
    # demo only: how fast the service's clock runs
    scale: float = Field(default=1.0, ge=SCALE_MIN, le=SCALE_MAX)
    anchor: str = ""  # demo only: the instant both demo processes count from
    test_file: str = ""  # tests only: the service reads the time from this file


class SlackSection(Section):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None  # Socket Mode (xapp-...)
    api_url: str = "https://slack.com/api/"
    incident_channels: list[str] = []
    approvers: dict[str, Principals] = {}  # Slack user id -> principal
    requesters: dict[str, Principals] = {}
    team_id: str = ""  # the one workspace served ("": any sharing the signing secret)
    enterprise_id: str = ""  # the one Enterprise Grid org served


class TeamsSection(Section):
    app_id: str = ""
    tenant_id: str = ""
    app_password: SecretStr | None = None
    cert_path: str = ""
    openid_metadata_url: str = ""
    allowed_issuers: list[str] = []
    token_authority: str = ""  # outbound token authority (sovereign clouds)
    incident_conversations: list[str] = []
    approvers: dict[str, Principals] = {}  # Teams user id -> principal
    requesters: dict[str, Principals] = {}
    dev_disable_auth: bool = False


class StepUpSection(Section):
    """``[step_up]``: unset values are None, so engine.access applies its own defaults."""

    authentication_context: str | None = None
    max_age_seconds: Minutes | None = None
    high_risk_roles: list[str] | None = None
    client_id: str | None = None  # the sign-in app registration (default: tenant.client_id)
    client_secret: SecretStr | None = None  # default: the Graph client secret
    prompt_login: Annotated[bool, Field(strict=True)] | None = None


class SettingsModel(BaseSettings):
    """The whole configuration document: TOML sections merged with the environment."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the document we are given: pydantic-settings would otherwise read
        ``os.environ`` by field name (``HOME`` became the home, ``MODEL`` the model table).
        bot.config_env reads the ``BREAKGLASS_*`` variables."""
        return (init_settings,)

    home: str = ".breakglass"
    service: ServiceSection = Field(default_factory=ServiceSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    identities: IdentitiesSection = Field(default_factory=IdentitiesSection)
    names: dict[str, str] = {}
    tenant: TenantSection = Field(default_factory=TenantSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    model: ModelSection = Field(default_factory=ModelSection)
    clock: ClockSection = Field(default_factory=ClockSection)
    slack: SlackSection = Field(default_factory=SlackSection)
    teams: TeamsSection = Field(default_factory=TeamsSection)
    # issue 17: target limits, step-up and prerequisites per template; engine.access checks
    # every key (it refuses unknown ones), so this stays a plain table here.
    templates: dict[str, dict[str, Any]] = {}
    step_up: StepUpSection = Field(default_factory=StepUpSection)


# Every secret's place in the document; none of them may be written into the TOML file.
SECRET_PATHS = (
    ("database", "url"),
    ("tenant", "client_secret"),
    ("tenant", "simulated_secret"),
    ("model", "api_key"),
    ("slack", "bot_token"),
    ("slack", "signing_secret"),
    ("slack", "app_token"),
    ("teams", "app_password"),
    ("step_up", "client_secret"),
)
