"""Errors of the simulated tenant, rendered as Graph (or Entra token endpoint) bodies."""

from __future__ import annotations


class SimError(Exception):
    """A refusal the simulated Graph answers with ``{"error": {"code", "message", ...}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class TokenError(Exception):
    """A refusal of the token endpoint: OAuth2 ``error`` plus an AADSTS number."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{aadsts}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description
