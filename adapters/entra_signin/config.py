"""Where the step-up sign-in goes and how the client authenticates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

CALLBACK_PATH = "/v1/stepup/callback"
START_PATH = "/v1/stepup/start"  # + /{state}: a short link that redirects to the sign-in


@dataclass(frozen=True)
class SignInConfig:
    """The app registration used for approvers' sign-in (a web app with a secret)."""

    authority_url: str  # https://login.microsoftonline.com, or the simulated tenant's base
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str  # the public listener's CALLBACK_PATH
    issuer: str = ""  # expected ``iss``; default: {authority_url}/{tenant_id}/v2.0
    prompt_login: bool = True  # force the password prompt, not only the MFA
    pending_ttl: timedelta = timedelta(minutes=15)  # a begun sign-in may complete this long

    def endpoint(self, path: str) -> str:
        return f"{self.authority_url.rstrip('/')}/{self.tenant_id}/{path}"

    @property
    def authorize_url(self) -> str:
        return self.endpoint("oauth2/v2.0/authorize")

    @property
    def token_url(self) -> str:
        return self.endpoint("oauth2/v2.0/token")

    @property
    def jwks_url(self) -> str:
        return self.endpoint("discovery/v2.0/keys")

    @property
    def expected_issuer(self) -> str:
        return self.issuer or self.endpoint("v2.0")
