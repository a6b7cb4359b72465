"""Where a request modal was opened, sealed into the modal's ``private_metadata``.

Slack echoes ``private_metadata`` back in the ``view_submission``. The bot seals the channel
and the person it opened the form for with an HMAC under a key derived from the signing
secret (its own purpose, so a seal is never a valid request signature); stateless, so any
replica can check a submission. A submission must carry the origin this bot sealed: an
edited one, or one hand-made without the secret, files no job. Whoever holds the signing
secret can seal too, as they can sign anything: against them, only the secret's keeping
helps.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from adapters.slack.config import CHANNEL_ID

_PURPOSE = b"breakglass/slack/modal-origin/v1"
_MAC = "mac"


class OriginError(Exception):
    """The modal's origin cannot be trusted; ``str`` says why (for the log)."""


def _mac(signing_secret: str, channel: str, user: str) -> str:
    key = hmac.new(signing_secret.encode(), _PURPOSE, hashlib.sha256).digest()
    message = json.dumps(["v1", channel, user]).encode()  # a list: no field runs into another
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal(signing_secret: str, channel: str, user: str) -> str:
    """The ``private_metadata`` of a form opened in ``channel`` for ``user``."""
    mac = _mac(signing_secret, channel, user)
    return json.dumps({"channel": channel, "user": user, _MAC: mac})


def opened_in(signing_secret: str, context: str, user: str) -> str:
    """The channel sealed in ``context`` for ``user``; raises :class:`OriginError`.

    Steps: (1) an object with text ``channel``, ``user`` and ``mac``; (2) the MAC is ours;
    (3) it was sealed for the person submitting; (4) the channel is a channel id. Does NOT
    check that the channel is an incident channel (the caller's rule, which may change)."""
    try:
        doc = json.loads(context) if context else None
    except ValueError:
        doc = None
    values = [doc.get(k) for k in ("channel", "user", _MAC)] if isinstance(doc, dict) else []
    fields = [v for v in values if isinstance(v, str)]
    if len(fields) != 3:
        raise OriginError("the form carries no sealed origin")
    channel, sealed_for, mac = fields
    expected = _mac(signing_secret, channel, sealed_for)
    if not hmac.compare_digest(mac.encode(errors="replace"), expected.encode()):
        raise OriginError("the form's origin seal does not match")
    if sealed_for != user:
        raise OriginError("the form was opened for another person")
    if not CHANNEL_ID.fullmatch(channel):
        raise OriginError("the form's origin is not a channel id")
    return channel
