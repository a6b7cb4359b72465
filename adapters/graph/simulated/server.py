"""``SimulatedTenant``: the simulated Entra + Graph server, and its Python control surface."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from adapters.graph.simulated import (
    auditlog,
    deletions,
    http_apps,
    http_auditlogs,
    http_control,
    http_graph,
    http_identity,
    http_members,
    http_signin,
    permissions,
    persist,
    pim,
    policies,
)
from adapters.graph.simulated.clock import Clock, ManualClock, SystemClock, iso
from adapters.graph.simulated.core import TOKEN_LIFETIME, AppCredentials, LogEntry, SimCore
from adapters.graph.simulated.directory import Assignment, Directory, default_seed, load_directory
from adapters.graph.simulated.faults import Fault
from adapters.graph.simulated.http_common import CORE, stamp


def issuer_for(base_url: str, tenant_id: str) -> str:
    """The ``iss`` of the ID tokens a simulated tenant at ``base_url`` issues (https, like
    Entra's): also what a service using a tenant in another process expects."""
    host = base_url.rstrip("/").removeprefix("http://")
    return f"https://{host}/{tenant_id}/v2.0"


class SimulatedTenant:
    """A SIMULATED tenant on ``127.0.0.1`` (random port). ``async with`` it, or start/stop.

    ``client_secret`` defaults to a fresh random value (read it from ``.client_secret``).
    ``ca_interval`` is the Conditional Access rate limit in seconds (1.0 like Graph).
    ``strict`` applies the real tenant's PIM rules (minimum duration, no removal in the first
    5 minutes, last-admin protection, ``ScheduleCreated``); on by default, as the real tenant.
    ``state_path``: keep the directory in this JSON file (loaded if present, rewritten
    atomically after every change), so a restarted tenant resumes its state.
    ``rate_clock``: the monotonic clock of the CA rate gate (see ``core.RateGate``) and of
    the reporting API's gate, ``reports_rate`` (requests, seconds): 5 per 10 s like Graph.
    ``token_lifetime``: of the access tokens issued (Entra: 60 to 90 minutes by default, 10
    minutes at least under a token lifetime policy).
    """

    def __init__(
        self,
        seed: Mapping[str, Any] | None = None,
        *,
        clock: Clock | None = None,
        client_secret: str | None = None,
        ca_interval: float = 1.0,
        strict: bool = True,
        state_path: Path | str | None = None,
        rate_clock: Callable[[], float] = time.monotonic,
        reports_rate: tuple[int, float] = (5, 10.0),
        token_lifetime: timedelta = TOKEN_LIFETIME,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.state_path = Path(state_path) if state_path is not None else None
        directory = self._initial_directory(seed)
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        credentials = AppCredentials(directory.app_id, self.client_secret)
        on_change = self._save if self.state_path is not None else None
        self.core = SimCore(
            directory,
            self.clock,
            credentials,
            ca_interval,
            strict=strict,
            on_change=on_change,
            rate_clock=rate_clock,
            reports_rate=reports_rate,
            token_lifetime=token_lifetime,
        )
        self.signin = http_signin.SignInService()
        self.memberships = http_members.Memberships()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        if on_change is not None:
            on_change(directory)

    def _initial_directory(self, seed: Mapping[str, Any] | None) -> Directory:
        saved = persist.read(self.state_path) if self.state_path is not None else None
        return saved or load_directory(seed or default_seed(), self.clock.now())

    def _save(self, directory: Directory) -> None:
        if self.state_path is not None:
            persist.save(self.state_path, directory)

    # lifecycle

    async def __aenter__(self) -> SimulatedTenant:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[stamp, http_graph.graph_gate])
        app[CORE] = self.core
        http_identity.add_routes(app)
        http_signin.add_routes(app, self.signin)
        http_members.add_routes(app, self.memberships)
        http_graph.add_routes(app)
        http_apps.add_routes(app)
        http_auditlogs.add_routes(app)
        http_control.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self._base_url = f"http://{bound[0]}:{bound[1]}"
        return self._base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # where to point the client

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the simulated tenant is not started")
        return self._base_url

    @property
    def authority_base_url(self) -> str:
        return self.base_url

    @property
    def graph_base_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def signin_issuer(self) -> str:
        """The ``iss`` of the ID tokens this tenant's sign-in issues (https, like Entra's)."""
        return issuer_for(self.base_url, self.tenant_id)

    def register_redirect_uri(self, uri: str) -> None:
        """Register a sign-in redirect URI (the step-up callback) on the app."""
        self.signin.redirect_uris.add(uri)

    @property
    def tenant_id(self) -> str:
        return self.directory.tenant_id

    @property
    def client_id(self) -> str:
        return self.directory.app_id

    # control surface (the same operations as the /_sim HTTP API)

    @property
    def directory(self) -> Directory:
        return self.core.directory

    @property
    def requests_log(self) -> list[LogEntry]:
        return self.core.log

    @property
    def page_size(self) -> int:
        return self.core.page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        self.core.page_size = size

    def add_fault(self, fault: Fault) -> None:
        self.core.faults.add(fault)

    def set_replication_lag(self, *, reads: int = 0, seconds: float = 0.0) -> None:
        self.core.replication.lag_reads = reads
        self.core.replication.lag_seconds = seconds

    def advance(self, delta: timedelta | float) -> None:
        if not isinstance(self.clock, ManualClock):
            raise RuntimeError("advance() needs a ManualClock")
        self.clock.advance(delta)

    def register_certificate(self, certificate_pem: bytes) -> str:
        """Accept client assertions signed by this certificate's key; returns its SHA-1."""
        cert = x509.load_pem_x509_certificate(certificate_pem)
        # Entra names certificates by their SHA-1 thumbprint (the x5t header): an id, not a MAC.
        thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
        self.core.credentials.certificates[thumbprint] = cert.public_key()
        return thumbprint

    # what an administrator does to the app itself (docs/graph.md, "the app refused")

    def expire_secret(self, at: datetime | None = None) -> None:
        """The client secret expires ``at`` (now by default): AADSTS7000222 from then on."""
        self.core.credentials.secret_expires = at or self.clock.now()

    def replace_secret(self, secret: str | None = None) -> str:
        """The secret is deleted and a new one added (returned): the old one is AADSTS7000215."""
        self.client_secret = secret or secrets.token_urlsafe(24)
        self.core.credentials.client_secret = self.client_secret
        self.core.credentials.secret_expires = None
        return self.client_secret

    def set_app_enabled(self, enabled: bool) -> None:
        """Disable (or enable again) the app's service principal: no new token while it is
        disabled (AADSTS7000112); tokens already issued stay valid until they expire."""
        self.core.credentials.enabled = enabled

    def remove_permission(self, name: str) -> None:
        """An administrator removes a Graph application permission (``permissions.MODELLED``):
        tokens issued from now on lack it, and Graph answers 403 where it is needed."""
        self.core.credentials.removed_permissions.add(permissions.known(name))

    def restore_permission(self, name: str) -> None:
        """... and grants it again: tokens issued from now on have it."""
        self.core.credentials.removed_permissions.discard(permissions.known(name))

    def grant(self, principal_id: str, role_id: str, minutes: int | None = None) -> dict[str, Any]:
        """Another administrator assigns ``role_id`` to ``principal_id`` (outside breakglass)."""
        with self.core.write() as directory:
            return pim.inject(directory, principal_id, role_id, minutes, self.clock.now())

    def add_member(self, group_id: str, member_id: str, kind: str | None = None) -> None:
        """Make ``member_id`` a direct member of ``group_id``: a user, or a group of the
        directory (nesting: its members become transitive members of ``group_id``), or,
        with ``kind``, a ``device``, ``servicePrincipal`` or ``orgContact``."""
        if kind is None:
            if member_id in self.directory.groups:
                kind = "group"
            elif member_id in self.directory.users:
                kind = "user"
            else:
                raise ValueError("member_id names no user or group here: give its kind")
        self.memberships.add(group_id, member_id, kind)

    def file_pim_request(self, principal_id: str, role_id: str, status: str) -> str:
        """A PIM activation request someone filed (``PendingApproval``, ``Denied``,
        ``Provisioned``...), as a template's prerequisite would name it; returns its id."""
        request = {
            "id": str(uuid.uuid4()),
            "status": status,
            "action": "selfActivate",
            "principalId": principal_id,
            "roleDefinitionId": role_id,
            "directoryScopeId": "/",
            "createdDateTime": iso(self.clock.now()),
            "justification": "filed in PIM",
        }
        with self.core.write() as directory:
            directory.requests.append(request)
        return str(request["id"])

    # the activity logs (issue 17 §5)

    def act(self, user_id: str, activity: str, target_ids: list[str]) -> dict[str, Any]:
        """``user_id`` did ``activity`` (e.g. "Reset user password") to these users: the
        audit entry a directory change made by that person would leave."""
        log, users = self.core.activity, self.directory.users
        return auditlog.user_did(log, self.clock.now(), users, user_id, activity, target_ids)

    def sign_in(
        self, user_id: str, app: str = "Azure Portal", error_code: int = 0
    ) -> dict[str, Any]:
        """``user_id`` signs in to ``app`` now (CA policies evaluated, exclusions honoured)."""
        return http_members.record_sign_in(self.core, self.memberships, user_id, app, error_code)

    @property
    def audit_log(self) -> list[dict[str, Any]]:
        return self.core.activity.audits

    @property
    def sign_in_log(self) -> list[dict[str, Any]]:
        return self.core.activity.sign_ins

    def set_log_latency(self, seconds: float) -> None:
        """Entries become readable this long after they happen (Entra: up to ~5 min)."""
        self.core.activity.latency = timedelta(seconds=seconds)

    def edit_policy(self, policy_id: str, change: Mapping[str, Any]) -> None:
        """Another administrator edits a CA policy (not rate limited, no validation)."""
        with self.core.write() as directory:
            policy = policies.policy_or_404(directory, policy_id)
            policies.merge(policy, change)
            policy["modifiedDateTime"] = iso(self.clock.now())

    def delete_policy(self, policy_id: str) -> None:
        """Another administrator deletes a CA policy ("Delete conditionalAccessPolicy":
        204; the policy is gone, not soft-deleted, and later reads answer 404)."""
        with self.core.write() as directory:
            policies.policy_or_404(directory, policy_id)
            del directory.policies[policy_id]

    def delete_user(self, user_id: str) -> None:
        """Another administrator deletes a user ("Delete a user": 204): it moves to deleted
        items with its role assignments, which stop being listed (see ``deletions``)."""
        with self.core.write() as directory:
            deletions.delete_user(directory, user_id, self.clock.now())

    def restore_user(self, user_id: str) -> dict[str, Any]:
        """Another administrator restores a deleted user ("Restore deleted item"): its role
        assignments that have not expired are back, and so is the privilege they give."""
        with self.core.write() as directory:
            return deletions.restore_user(directory, user_id, self.clock.now())

    @property
    def strict(self) -> bool:
        return self.core.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self.core.strict = value

    def active_grants(self) -> list[Assignment]:
        return self.directory.active_assignments(self.clock.now())

    def state(self) -> dict[str, Any]:
        return self.directory.view(self.clock.now())
