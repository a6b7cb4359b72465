"""The MCP tool gateway: OpenClaw's only tool server, in front of our tool gateway.

A streamable HTTP MCP server (the official ``mcp`` SDK, stateless, JSON answers) on a
loopback port picked by the OS. Each job's run is bound to a random secret that OpenClaw
sends as a static ``Authorization`` header; the secret names the job, never grants
anything by itself. ``tools/list`` shows exactly the job's WPC tools under their MCP names
(adapters/openclaw/names.py); ``tools/call`` forwards in-process to the tool gateway with
the job's current CST, so every call is checked, receipted and refused there exactly as
for any other executor. A refusal comes back to the model as an error result
``refused: <reason>``. A ``tools/call`` the SDK refuses as malformed (arguments that are
not an object, a name that is not a string) goes to the gateway too, which refuses and
receipts it; every other request the SDK refuses is one log line: a WARNING naming the
JSON-RPC method when a handler's middleware saw it, else (the transport refused it: not
JSON, a wrong Content-Type, Accept, Host, HTTP method or path) an INFO naming the HTTP
status, method and path. Neither shows the body or the secret. Calls that race a halt
still reach the gateway (the binding is dropped only after the process has exited), so
the revoked token refuses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import mcp.types as types
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.openclaw.names import SERVER_NAME, catalog_name, mcp_name
from engine import catalog

log = logging.getLogger("breakglass.openclaw.mcp")
MCP_PATH = "/mcp"
_LOGGED = "breakglass.refusal_logged"  # ASGI scope key: the middleware logged this request


class CallOutcome(Protocol):
    """What the tool gateway answers (bot.gateway_service.GatewayOutcome fits)."""

    @property
    def allowed(self) -> bool: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> Mapping[str, Any]: ...
    @property
    def reason(self) -> str: ...


class ToolCaller(Protocol):
    """The in-process tool gateway (bot.gateway_service.ToolGateway fits)."""

    async def call(
        self, job_id: str, token: object, tool_name: object, arguments: object
    ) -> CallOutcome: ...

    async def refuse(
        self, job_id: str, token: object, tool_name: object, arguments: object, detail: str
    ) -> CallOutcome: ...


@dataclass
class Binding:
    job_id: str
    token: str
    tools: tuple[str, ...]  # catalog names shown to this job's run


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service owns SIGTERM/SIGINT, not this embedded server


class McpGateway:
    def __init__(self, caller: ToolCaller) -> None:
        self.caller = caller
        self._bindings: dict[str, Binding] = {}  # by secret
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.url = ""

    # ------------------------------------------------------------------ bindings

    def bind(self, job_id: str, token: str, tools: Sequence[str]) -> str:
        """A fresh secret for one run of ``job_id``; every tool must have an MCP name."""
        names = tuple(tools)
        for name in names:
            mcp_name(name)
        secret = secrets.token_urlsafe(32)
        self._bindings[secret] = Binding(job_id, token, names)
        return secret

    def refresh(self, job_id: str, token: str) -> None:
        """After an extension: later calls of the job's runs carry the new token."""
        for binding in self._bindings.values():
            if binding.job_id == job_id:
                binding.token = token

    def unbind(self, secret: str) -> None:
        self._bindings.pop(secret, None)

    def bound_jobs(self) -> set[str]:
        return {b.job_id for b in self._bindings.values()}

    # ------------------------------------------------------------------ serving

    async def start(self, host: str = "127.0.0.1") -> str:
        """Listen on ``host`` at a port the OS picks; the endpoint URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(64)  # connections wait in the backlog until uvicorn accepts them
        self._socket = sock
        app = self._mcp_server().streamable_http_app(
            streamable_http_path=MCP_PATH, json_response=True, stateless_http=True, host=host
        )
        # log_config=None: uvicorn's loggers propagate to our JSON handler (bot.logs) instead
        # of its own plain-text handlers
        config = uvicorn.Config(
            self._logging_refusals(app),
            log_level="warning",
            lifespan="on",
            access_log=False,
            log_config=None,
        )
        self._server = _Server(config)
        self._task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        self.url = f"http://{host}:{sock.getsockname()[1]}{MCP_PATH}"
        return self.url

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = self._socket = None

    def _mcp_server(self) -> Server[Any]:
        server: Server[Any] = Server(
            SERVER_NAME,
            version="1",
            instructions="Break-glass tools; every call is checked against a signed policy.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        server.middleware.append(self._refused_by_sdk)
        return server

    async def _refused_by_sdk(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Requests the SDK refuses before our handlers run, and only those (our handlers
        answer with results, never these errors): the SDK answers the caller itself."""
        try:
            return await call_next(ctx)
        except (MCPError, ValidationError) as exc:
            code = exc.error.code if isinstance(exc, MCPError) else types.INVALID_PARAMS
            binding = self._binding(ctx)
            where = f"job {binding.job_id}" if binding is not None else "no bound job"
            if ctx.method == "tools/call" and code == types.INVALID_PARAMS and binding:
                # A malformed call is still a call: refused and receipted by the gateway.
                params = ctx.params if isinstance(ctx.params, Mapping) else {}
                name = params.get("name")
                tool = catalog_name(name) if isinstance(name, str) else name
                detail = "the MCP SDK refused its params as invalid"
                await self.caller.refuse(
                    binding.job_id, binding.token, tool, params.get("arguments"), detail
                )
            log.warning("MCP %s refused (%s) on %s", ctx.method[:40], code, where)
            scope = getattr(ctx.request, "scope", None)
            if isinstance(scope, dict):  # its HTTP answer may be a 4xx: logged already
                scope[_LOGGED] = True
            raise

    def _logging_refusals(self, app: ASGIApp) -> ASGIApp:
        """``app`` logging one INFO line per request it answers 4xx without the middleware
        having logged it: what the SDK's transport refused before any handler ran."""

        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start" and not scope.get(_LOGGED):
                    status = int(message["status"])
                    if 400 <= status < 500:  # before it is sent: the caller sees it after
                        self._log_refused(scope, status)
                await send(message)

            await app(scope, receive, watch if scope["type"] == "http" else send)

        return logged

    def _log_refused(self, scope: Scope, status: int) -> None:
        binding = self._bound(Headers(scope=scope))
        where = f"job {binding.job_id}" if binding is not None else "no bound job"
        method, path = str(scope["method"])[:16], str(scope["path"])[:120]
        extra = {"job_id": binding.job_id} if binding is not None else {}
        log.info(
            "MCP transport refused %s %s: HTTP %d on %s", method, path, status, where, extra=extra
        )

    def _binding(self, ctx: ServerRequestContext[Any, Any]) -> Binding | None:
        headers = getattr(ctx.request, "headers", None)
        return self._bound(headers) if headers is not None else None

    def _bound(self, headers: Mapping[str, str]) -> Binding | None:
        """The binding the request's bearer secret names, if any."""
        auth = str(headers.get("authorization", ""))
        secret = auth[7:] if auth.startswith("Bearer ") else ""
        return self._bindings.get(secret) if secret else None

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        binding = self._binding(ctx)
        tools = binding.tools if binding is not None else ()
        return types.ListToolsResult(tools=[_tool(name) for name in tools])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        binding = self._binding(ctx)
        if binding is None:
            log.warning("MCP call %s with no bound job refused", params.name[:80])
            return _refused("JOB_UNKNOWN")
        name = catalog_name(params.name)
        outcome = await self.caller.call(binding.job_id, binding.token, name, params.arguments)
        if not outcome.allowed:
            return _refused(outcome.reason)
        body = {"status": outcome.status, "result": dict(outcome.result)}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(body, sort_keys=True))],
            is_error=outcome.status != "success",
        )


def _tool(name: str) -> types.Tool:
    spec = catalog.TOOLS[name]
    return types.Tool(
        name=mcp_name(name), description=spec.description, input_schema=dict(spec.parameters)
    )


def _refused(reason: str) -> types.CallToolResult:
    text = f"refused: {reason}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
