"""What a job command did: the answer every entry point (chat, console, CLI) gets back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """What a command did: ``ok`` with the transition's result, or refused with a reason."""

    ok: bool
    job_id: str
    result: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    detail: str = ""
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "job_id": self.job_id,
            "result": dict(self.result),
            "reason": self.reason,
            "detail": self.detail,
        }

    @classmethod
    def replayed_from(cls, cached: Mapping[str, Any]) -> Outcome:
        """The answer kept for an idempotency key (:meth:`to_json`), given again."""
        return cls(
            ok=bool(cached.get("ok", True)),
            job_id=str(cached.get("job_id", "")),
            result=cached.get("result", {}),
            reason=str(cached.get("reason", "")),
            detail=str(cached.get("detail", "")),
            replayed=True,
        )
