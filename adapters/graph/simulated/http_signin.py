"""The simulated Entra sign-in: OpenID Connect authorization code + PKCE for step-up.

``GET /{tenant}/oauth2/v2.0/authorize`` shows a small page (SIMULATED) where a demo user of
the directory signs in and may "complete MFA"; the form posts back and the browser is sent
to the registered ``redirect_uri`` with ``code`` and ``state``. The token endpoint
(``grant_type=authorization_code``, in ``http_identity``) checks the client, the redirect
URI and the PKCE verifier and answers an RS256 ID token carrying ``nonce``, ``oid``,
``auth_time``, ``amr`` and, when MFA was completed and the ``claims`` parameter asked for an
authentication context, ``acrs``. Keys are served at ``/{tenant}/discovery/v2.0/keys``.
Codes are single use and live 10 minutes on the sim clock, like Entra's.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from adapters.graph.simulated.core import SimCore
from adapters.graph.simulated.errors import TokenError
from adapters.graph.simulated.http_common import core_of
from adapters.graph.simulated.http_members import MEMBERSHIPS, record_sign_in

CODE_LIFETIME = timedelta(minutes=10)
ID_TOKEN_LIFETIME = timedelta(hours=1)
_AUTH_PARAMS = (
    "client_id",
    "redirect_uri",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "claims",
    "max_age",
    "prompt",
    "scope",
    "response_type",
)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    oid: str
    acrs: list[str]
    amr: list[str]
    auth_time: datetime
    expires: datetime


@dataclass
class SignInService:
    """The sign-in side of the simulated tenant: its signing key, redirect URIs and codes."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: secrets.token_hex(8))
    redirect_uris: set[str] = field(default_factory=set)
    codes: dict[str, _Grant] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


SIGNIN: web.AppKey[SignInService] = web.AppKey("breakglass_sim_signin", SignInService)


def issuer(request: web.Request) -> str:
    """The issuer the discovery document names (https, as Entra's)."""
    return f"https://{request.host}/{request.match_info['tenant']}/v2.0"


def _params(request: web.Request, source: Any) -> dict[str, str]:
    core = core_of(request)
    if request.match_info["tenant"].lower() != core.directory.tenant_id:
        raise web.HTTPNotFound(reason="Tenant not found.")
    params = {k: str(source[k]) for k in _AUTH_PARAMS if k in source}
    signin = request.app[SIGNIN]
    if params.get("client_id") != core.credentials.client_id:
        raise web.HTTPBadRequest(reason="AADSTS700016: Application not found in the directory.")
    if params.get("redirect_uri") not in signin.redirect_uris:
        raise web.HTTPBadRequest(reason="AADSTS50011: The redirect URI does not match.")
    if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
        raise web.HTTPBadRequest(reason="AADSTS900144: code flow with PKCE S256 required.")
    for name in ("state", "nonce", "code_challenge"):
        if not params.get(name):
            raise web.HTTPBadRequest(reason=f"AADSTS900144: '{name}' is required.")
    return params


async def authorize_page(request: web.Request) -> web.Response:
    params = _params(request, request.query)
    users = core_of(request).directory.users
    options = "".join(
        f'<option value="{html.escape(u["id"])}">{html.escape(u["userPrincipalName"])}</option>'
        for u in users.values()
    )
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items()
    )
    body = (
        "<!doctype html><title>Sign in (SIMULATED)</title>"
        "<h1>Sign in to the SIMULATED tenant</h1>"
        f'<form method="post">{hidden}<label>User <select name="user">{options}</select>'
        '</label><label><input type="checkbox" name="mfa" value="1" checked> Complete MFA'
        '</label><button type="submit">Sign in</button></form>'
    )
    return web.Response(text=body, content_type="text/html")


async def authorize_submit(request: web.Request) -> web.Response:
    form = await request.post()
    params = _params(request, form)
    core = core_of(request)
    oid = str(form.get("user", ""))
    if oid not in core.directory.users:
        raise web.HTTPBadRequest(reason="AADSTS50034: The user account does not exist.")
    mfa = form.get("mfa") == "1"
    # The sign-in log sees this sign-in, as Entra's would (issue 17 §5).
    record_sign_in(core, request.app[MEMBERSHIPS], oid, "breakglass step-up (SIMULATED)")
    wanted = _requested_acrs(params.get("claims", ""))
    code = secrets.token_urlsafe(32)
    now = core.now()
    request.app[SIGNIN].codes[code] = _Grant(
        client_id=params["client_id"],
        redirect_uri=params["redirect_uri"],
        challenge=params["code_challenge"],
        nonce=params["nonce"],
        oid=oid,
        acrs=wanted if mfa else [],
        amr=["pwd", "mfa"] if mfa else ["pwd"],
        auth_time=now,
        expires=now + CODE_LIFETIME,
    )
    target = URL(params["redirect_uri"]).update_query(code=code, state=params["state"])
    return web.Response(status=302, headers={"Location": str(target)})


def _requested_acrs(claims: str) -> list[str]:
    """The authentication contexts the ``claims`` parameter asks for in the ID token."""
    try:
        doc = json.loads(claims) if claims else {}
        acrs = doc.get("id_token", {}).get("acrs", {})
    except (ValueError, AttributeError):
        return []
    values = acrs.get("values") or ([acrs["value"]] if "value" in acrs else [])
    return [str(v) for v in values if isinstance(v, str)]


def exchange_code(request: web.Request, core: SimCore, fields: dict[str, str]) -> dict[str, Any]:
    """The token response for an authorization code (the client is authenticated already)."""
    signin = request.app[SIGNIN]
    grant = signin.codes.pop(fields.get("code", ""), None)  # single use, even when refused
    now = core.now()
    if grant is None or grant.expires <= now:
        raise TokenError(400, "invalid_grant", 70008, "The authorization code has expired.")
    if grant.client_id != fields.get("client_id") or grant.redirect_uri != fields.get(
        "redirect_uri"
    ):
        raise TokenError(400, "invalid_grant", 50148, "The code was issued to another client.")
    verifier = fields.get("code_verifier", "")
    digest = hashlib.sha256(verifier.encode()).digest()
    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
        raise TokenError(400, "invalid_grant", 501481, "The code_verifier does not match.")
    claims: dict[str, Any] = {
        "iss": issuer(request),
        "aud": grant.client_id,
        "tid": core.directory.tenant_id,
        "oid": grant.oid,
        "sub": grant.oid,
        "nonce": grant.nonce,
        "auth_time": int(grant.auth_time.timestamp()),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        "amr": grant.amr,
        "ver": "2.0",
    }
    if grant.acrs:
        claims["acrs"] = grant.acrs
    return {"token_type": "Bearer", "id_token": signin.sign(claims), "scope": "openid"}


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIGNIN].jwks())


def add_routes(app: web.Application, signin: SignInService) -> None:
    app[SIGNIN] = signin
    app.router.add_get("/{tenant}/oauth2/v2.0/authorize", authorize_page)
    app.router.add_post("/{tenant}/oauth2/v2.0/authorize", authorize_submit)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", jwks)
