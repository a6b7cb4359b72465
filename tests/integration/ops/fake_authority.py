"""A fake Entra authority for the Teams bot's app (Bot Framework scope), on loopback.

It answers OpenID discovery and the client-credentials token request, checking the app id,
its password and that the scope asked for is the Bot Framework's, as Entra would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from bot.preflight import BOT_FRAMEWORK_SCOPE


@dataclass
class FakeAuthority:
    tenant_id: str
    app_id: str
    password: str
    scopes_asked: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, request: web.Request) -> web.Response:
        base = f"https://{request.host}/{request.match_info['tenant']}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.scopes_asked.append(str(form.get("scope")))
        known = (form.get("client_id"), form.get("client_secret")) == (self.app_id, self.password)
        if request.match_info["tenant"] != self.tenant_id or not known:
            body = {"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}
            return web.json_response(body, status=401)
        if form.get("scope") != BOT_FRAMEWORK_SCOPE:
            return web.json_response({"error": "invalid_scope"}, status=400)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3600, "access_token": "fake-bot-token"}
        )
