"""SIMULATED Microsoft Entra tenant and Microsoft Graph, for tests and the demo. NOT REAL.

Nothing here talks to Microsoft. An aiohttp server on 127.0.0.1 (port 0: the OS picks one)
imitates the parts of Entra and Graph that breakglass uses, in their documented shapes:

* OpenID discovery ``/{tenant}/v2.0/.well-known/openid-configuration`` and the token endpoint
  ``/{tenant}/oauth2/v2.0/token`` (client_credentials, secret or certificate; opaque tokens).
* PIM: ``/v1.0/roleManagement/directory/roleAssignmentScheduleRequests`` (adminAssign,
  adminRemove, policy checks) and ``.../roleAssignmentScheduleInstances`` (``$filter``), with
  assignments that expire by themselves on the sim clock.
* Conditional Access policies: GET / PATCH, limited to 1 request/s per tenant (429 without
  ``Retry-After``).
* ``/v1.0/users/{id}/revokeSignInSessions``.
* Faults on demand (429 with and without ``Retry-After``, 503, 504, dropped connections after
  applying a write) and replication lag; a control API under ``/_sim`` (see ``http_control``).

Every answer carries ``X-Breakglass-Simulated: true``.

Start it from Python::

    async with SimulatedTenant(clock=ManualClock()) as sim:
        config = GraphConfig(
            tenant_id=sim.tenant_id, client_id=sim.client_id, client_secret=sim.client_secret,
            authority_base_url=sim.authority_base_url, graph_base_url=sim.graph_base_url,
        )

or from a shell: ``python -m adapters.graph.simulated --port 8765``.
"""

from adapters.graph.simulated.clock import Clock, ManualClock, SystemClock
from adapters.graph.simulated.core import LogEntry
from adapters.graph.simulated.directory import default_seed
from adapters.graph.simulated.faults import Fault
from adapters.graph.simulated.http_common import SIM_HEADER
from adapters.graph.simulated.server import SimulatedTenant, issuer_for

__all__ = [
    "SIM_HEADER",
    "Clock",
    "Fault",
    "LogEntry",
    "ManualClock",
    "SimulatedTenant",
    "SystemClock",
    "default_seed",
    "issuer_for",
]
