"""What a start needs beyond valid settings: the signing keys and a store that answers; and,
on request, the outside systems' credentials (Graph token, Slack ``auth.test``, the Teams
bot's token). Every check returns problem lines instead of raising, so ``config check``
reports all of them at once and ``serve`` refuses with the first.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.graph import GraphConfig
from adapters.graph.auth import TokenSource
from adapters.store import SqlStore, sqlite_url
from adapters.store.connect import parse_url, safe_url
from bot.config import Settings
from bot.keys import key_dir, load_keys
from engine.errors import BreakGlassError, describe

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


def database_url(settings: Settings) -> str:
    return settings.database_url or sqlite_url(settings.home)


def safe_database(settings: Settings) -> str:
    """The store's URL without its secrets (for lines people read)."""
    try:
        return safe_url(parse_url(database_url(settings)))
    except BreakGlassError:
        return "an unusable database URL"


def key_problems(settings: Settings) -> list[str]:
    """Keys must exist and load, except with the simulated tenant (made at first start)."""
    if settings.simulated and not key_dir(settings.home).exists():
        return []
    try:
        load_keys(settings.home)
    except BreakGlassError as err:
        return [f"keys: {describe(err)}"]
    return []


async def store_problems(settings: Settings) -> list[str]:
    """Connect to the store (and bring its schema to head, as a start would)."""
    if not settings.database_url and not settings.home.exists():
        return []  # the default SQLite file is created under the home at first start
    try:
        store = await SqlStore.open(database_url(settings))
    except BreakGlassError as err:
        variable = "BREAKGLASS_DATABASE_URL" if settings.database_url else "BREAKGLASS_HOME"
        return [f"{variable}: cannot use the store {safe_database(settings)}: {describe(err)}"]
    await store.close()
    return []


async def online_problems(settings: Settings) -> list[str]:
    """Ask each configured outside system to accept our credentials."""
    problems: list[str] = []
    if settings.graph is not None:
        problems += await _token("tenant: Graph token", settings.graph)
    if settings.slack is not None:
        problems += await _slack_auth_test(settings)
    if settings.teams is not None and settings.teams.app_password:
        teams = settings.teams
        authority = urlsplit(teams.token_authority or DEFAULT_AUTHORITY)
        config = GraphConfig(
            tenant_id=teams.tenant_id,
            client_id=teams.app_id,
            client_secret=teams.app_password,
            authority_base_url=f"{authority.scheme}://{authority.netloc}",
            scope=BOT_FRAMEWORK_SCOPE,
        )
        problems += await _token("teams: bot token", config)
    return problems


async def _token(what: str, config: GraphConfig) -> list[str]:
    try:
        await TokenSource(config).token()
    except BreakGlassError as err:
        return [f"{what}: {describe(err)}"]
    return []


async def _slack_auth_test(settings: Settings) -> list[str]:
    assert settings.slack is not None
    client = AsyncWebClient(token=settings.slack.bot_token, base_url=settings.slack.api_base)
    try:
        await client.auth_test()
    except SlackApiError as err:
        return [f"slack: auth.test refused the bot token: {err.response.get('error', '?')}"]
    except Exception as err:  # unreachable, timeouts: any transport failure, one line
        return [f"slack: auth.test could not reach {settings.slack.api_base}: {type(err).__name__}"]
    return []
