"""Microsoft Graph adapter: the privileged Entra actions behind breakglass's tools.

Wiring from ``bot/``::

    config = GraphConfig(tenant_id=..., client_id=..., client_secret=...)
    tools = GraphTools(config, snapshots=store)   # implements engine.ports.ToolPort
    ...
    await tools.close()

A simulated tenant for tests and the demo lives in ``adapters.graph.simulated``.
"""

from adapters.graph.ca import SnapshotIndex
from adapters.graph.client import GraphClient, GraphResponse
from adapters.graph.config import CertificateCredential, GraphConfig, RetryPolicy
from adapters.graph.failures import ResponseLost
from adapters.graph.tools import TOOL_NAMES, GraphTools

__all__ = [
    "TOOL_NAMES",
    "CertificateCredential",
    "GraphClient",
    "GraphConfig",
    "GraphResponse",
    "GraphTools",
    "ResponseLost",
    "RetryPolicy",
    "SnapshotIndex",
]
