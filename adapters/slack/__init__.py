"""Slack adapter: the break-glass flow in a Slack incident channel.

Wiring from ``bot/``::

    config = SlackConfig.from_env(os.environ)       # None when Slack is not enabled
    slack = SlackAdapter(config, chat_ports(service))  # from bot.job_commands
    service.notifier.register(slack)                 # ChatPort, platform "slack"
    slack.mount(web_app)                             # POST /slack/events
    await slack.start_socket_mode()                  # with an app-level token only
    await slack.deliver_queued(now)                  # on a timer: posts Slack missed

See docs/slack.md for installing the app and the configuration.
"""

from adapters.slack.adapter import SlackAdapter
from adapters.slack.config import SlackConfig
from adapters.slack.web import SlackDeliveryError

__all__ = ["SlackAdapter", "SlackConfig", "SlackDeliveryError"]
