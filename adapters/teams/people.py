"""Who a Teams user is: the exact directory principal, and the ids cards address them by.

A Teams user has two ids: the Entra ``aadObjectId`` and the per-app ``29:...`` id. Either may
be configured. Both are looked up; when they name two different principals the user is
ambiguous and gets none (every approval by them is refused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from microsoft_agents.activity import ChannelAccount

from adapters.teams.config import TeamsConfig
from engine.job import Actor

log = logging.getLogger("breakglass.teams.people")
MAX_LEARNED = 5000  # aadObjectId -> 29: id pairs remembered for refresh.userIds

Resolve = Callable[[str, str], Actor]  # (chat identity, display) -> actor


@dataclass(frozen=True)
class TeamsUser:
    user_id: str  # the 29:... id
    aad_object_id: str | None
    display: str


def user_of(account: ChannelAccount | None) -> TeamsUser | None:
    if account is None or not account.id:
        return None
    aad = getattr(account, "aad_object_id", None) or None
    return TeamsUser(str(account.id)[:200], str(aad)[:100] if aad else None, account.name or "")


class People:
    def __init__(self, config: TeamsConfig, resolve: Resolve) -> None:
        self.config = config
        self.resolve = resolve
        self._mri_by_aad: dict[str, str] = {}

    def actor(self, user: TeamsUser) -> Actor:
        self._learn(user)
        ids = [i for i in (user.aad_object_id, user.user_id) if i]
        found = [self.resolve(f"teams:{i}", user.display) for i in ids]
        principals = {a.principal for a in found if a.principal is not None}
        if len(principals) > 1:
            log.warning(
                "Teams user %s maps to several principals; treated as unknown", user.user_id
            )
        if len(principals) == 1:
            return next(a for a in found if a.principal is not None)
        return Actor(f"teams:{ids[0]}", None, user.display[:80])

    def _learn(self, user: TeamsUser) -> None:
        if user.aad_object_id and user.user_id.startswith("29:"):
            if len(self._mri_by_aad) >= MAX_LEARNED:
                self._mri_by_aad.pop(next(iter(self._mri_by_aad)))
            self._mri_by_aad[user.aad_object_id] = user.user_id

    def card_user_ids(self, principals: Collection[str]) -> tuple[str, ...]:
        """The ``29:...`` ids of configured approvers among ``principals`` (refresh.userIds)."""
        ids = []
        for user, principal in self.config.approvers.items():
            if principal not in principals:
                continue
            mri = user if user.startswith("29:") else self._mri_by_aad.get(user)
            if mri is not None and mri not in ids:
                ids.append(mri)
        return tuple(ids)
