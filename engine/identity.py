"""Mapping chat identities to directory principals, exactly (STYLE §8).

A chat user maps to exactly one directory principal; zero or several matches resolve to no
principal (and every approval by such an actor is refused). Matching by e-mail happens only
when explicitly enabled, and only when the explicit mapping has no entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engine.job import Actor


@dataclass(frozen=True)
class Directory:
    by_chat_identity: Mapping[str, Sequence[str]] = field(default_factory=dict)
    by_email: Mapping[str, Sequence[str]] = field(default_factory=dict)
    allow_email_match: bool = False

    def resolve(self, chat_identity: str, display: str = "", email: str | None = None) -> Actor:
        """The actor for ``chat_identity``; ``principal`` is None unless exactly one matches."""
        matches = list(dict.fromkeys(self.by_chat_identity.get(chat_identity, ())))
        if not matches and self.allow_email_match and email:
            matches = list(dict.fromkeys(self.by_email.get(email.strip().lower(), ())))
        principal = matches[0] if len(matches) == 1 else None
        return Actor(chat_identity=chat_identity, principal=principal, display=display[:80])
