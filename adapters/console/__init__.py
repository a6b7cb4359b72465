"""The local console channel: a small web page on loopback where one person can act as the
requester and as the approvers, see the cards and press the buttons (the embedded default,
for trying breakglass with no Slack or Teams). It is a chat platform like the others: it
receives ChatEvents and turns clicks into the same card actions."""

from adapters.console.channel import ConsoleChannel

__all__ = ["ConsoleChannel"]
