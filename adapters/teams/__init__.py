"""Microsoft Teams adapter: the break-glass flow in a Teams incident channel.

Built on the Microsoft 365 Agents SDK for Python (``microsoft-agents-hosting-aiohttp``).
``TeamsBot`` answers ``POST /api/messages`` (``mount(app)``), implements
``engine.ports.ChatPort`` (``platform = "teams"``) and drains the outbox
(``deliver_queued(now)``). ``TeamsConfig`` is its one frozen configuration object.
See docs/teams.md.
"""

from adapters.teams.agent_app import TeamsBot, msal_connections
from adapters.teams.config import TeamsConfig
from adapters.teams.retry import RetryPolicy

__all__ = ["RetryPolicy", "TeamsBot", "TeamsConfig", "msal_connections"]
