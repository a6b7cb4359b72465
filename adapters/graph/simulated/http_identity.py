"""The simulated Entra token endpoint and the OpenID discovery document MSAL reads.

``client_credentials`` only; the client authenticates with its secret or with a certificate
(``private_key_jwt`` client assertion, checked against the registered certificate's
thumbprint, audience, issuer and expiry). Tokens are opaque and expire on the sim clock.
Endpoints in the discovery document are https, as MSAL requires; the breakglass client reroutes
them to this loopback server.

What an administrator can do to the app is refused here as Entra does (docs/graph.md, "the
app refused"): a disabled service principal (AADSTS7000112), an expired secret
(AADSTS7000222), a deleted or replaced one (AADSTS7000215); a ``drop`` fault naming this
endpoint closes the connection without an answer (the endpoint unreachable).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from adapters.graph.simulated import http_signin
from adapters.graph.simulated.core import SimCore
from adapters.graph.simulated.errors import TokenError
from adapters.graph.simulated.http_common import DROPPED, core_of

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
_SKEW = timedelta(minutes=5)


def _authority(request: web.Request) -> str:
    return f"https://{request.host}/{request.match_info['tenant']}"


def _check_tenant(request: web.Request) -> None:
    core = core_of(request)
    if request.match_info["tenant"].lower() != core.directory.tenant_id:
        raise TokenError(400, "invalid_request", 90002, "Tenant not found.")


async def openid_configuration(request: web.Request) -> web.Response:
    _check_tenant(request)
    base = _authority(request)
    doc = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "tenant_region_scope": "SIM",
        "cloud_instance_name": "breakglass.simulated",
        "msgraph_host": request.host,
    }
    return web.json_response(doc)


async def token(request: web.Request) -> web.Response:
    _check_tenant(request)
    if core_of(request).faults.take_named("drop", request.method, request.path) is not None:
        request[DROPPED] = True  # unreachable: the connection closes without an answer
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if fields.get("grant_type") == "authorization_code":  # step-up sign-in (http_signin)
        return await _code_token(request, fields)
    if fields.get("grant_type") != "client_credentials":
        raise TokenError(400, "unsupported_grant_type", 70003, "The grant type is not supported.")
    core = core_of(request)
    if fields.get("client_id") != core.credentials.client_id:
        raise TokenError(
            400, "unauthorized_client", 700016, "Application was not found in the directory."
        )
    _authenticate_client(request, core, fields)
    if fields.get("scope") != GRAPH_DEFAULT_SCOPE:
        raise TokenError(
            400, "invalid_scope", 70011, "The provided value for 'scope' is not valid."
        )
    access_token, lifetime = core.issue_token()
    body = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }
    return web.json_response(body, headers={"Cache-Control": "no-store, no-cache"})


async def _code_token(request: web.Request, fields: dict[str, str]) -> web.Response:
    core = core_of(request)
    if fields.get("client_id") != core.credentials.client_id:
        raise TokenError(
            400, "unauthorized_client", 700016, "Application was not found in the directory."
        )
    _authenticate_client(request, core, fields)
    body = http_signin.exchange_code(request, core, fields)
    return web.json_response(body, headers={"Cache-Control": "no-store, no-cache"})


def _authenticate_client(request: web.Request, core: SimCore, fields: dict[str, str]) -> None:
    app = core.credentials
    if not app.enabled:  # Entra's status for it is not documented: 400, as unauthorized_client
        raise TokenError(
            400, "unauthorized_client", 7000112, f"Application '{app.client_id}' is disabled."
        )
    if "client_secret" in fields:
        if not app.secret_matches(fields["client_secret"]):
            raise TokenError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if app.secret_expires is not None and core.now() >= app.secret_expires:
            raise TokenError(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{app.client_id}' are expired.",
            )
        return
    if fields.get("client_assertion_type") == ASSERTION_TYPE and "client_assertion" in fields:
        audience = f"{_authority(request)}/oauth2/v2.0/token"
        _check_assertion(core, fields["client_assertion"], audience)
        return
    raise TokenError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain 'client_assertion' or 'client_secret'.",
    )


def _check_assertion(core: SimCore, assertion: str, audience: str) -> None:
    key = core.credentials.certificates.get(_thumbprint_of(assertion))
    if key is None:
        raise TokenError(
            401, "invalid_client", 700027, "The certificate used to sign is not registered."
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key=key,
            algorithms=["RS256", "PS256"],
            audience=audience,
            options={"verify_exp": False, "verify_nbf": False, "require": ["exp", "iss", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed checks.") from exc
    client_id = core.credentials.client_id
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    if claims["iss"] != client_id or claims["sub"] != client_id or expires + _SKEW < core.now():
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed checks.")


def _thumbprint_of(assertion: str) -> str:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return ""
    x5t = header.get("x5t")
    if not isinstance(x5t, str):
        return ""
    padded = x5t + "=" * (-len(x5t) % 4)
    try:
        return base64.urlsafe_b64decode(padded).hex().upper()
    except ValueError:
        return ""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
