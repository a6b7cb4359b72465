"""Keeping the Agents SDK's own log lines in proportion.

The SDK logs at ERROR what is, for us, expected and already handled one level up:

* an activity its model refuses: ERROR with a traceback whose text embeds the sender's input
  (``input_value=...``, a person's words and names). The edge answers 400 and logs one line
  (``not an activity``), so the SDK's line is dropped.
* each failed Bot Connector call (``Error accessing '...': 503``): during a Teams outage,
  dozens of ERROR lines beside the ``ESCALATION`` lines an operator must act on. Our
  connector maps the failure to ``ChatError`` (one WARNING where it is handled; ERROR for a
  refused credential), so the SDK's line is lowered to DEBUG.

Installed once per process (the filters sit on the SDK's module loggers).
"""

from __future__ import annotations

import logging

ACTIVITY_LOGGER = "microsoft_agents.activity.activity"
CONNECTOR_LOGGER = "microsoft_agents.hosting.core.connector.client.connector_client"
VALIDATION_MESSAGE = "Validation error for Activity"
CONNECTOR_MESSAGES = ("Error accessing '", "Bad request for '")


class _DropActivityValidation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(VALIDATION_MESSAGE)


class _LowerConnectorErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(CONNECTOR_MESSAGES):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_sdk_logs() -> None:
    _install(ACTIVITY_LOGGER, _DropActivityValidation)
    _install(CONNECTOR_LOGGER, _LowerConnectorErrors)


def _install(name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())
