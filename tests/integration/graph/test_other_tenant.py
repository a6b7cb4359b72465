"""A call naming another tenant than the configured one is refused before any request."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import SimulatedTenant
from engine import catalog
from engine.errors import InputError
from tests.integration.graph.support import ca_args, refused, write_args


@pytest.mark.parametrize(
    ("tool", "args", "other_tenant"),
    [
        pytest.param(
            catalog.WRITE_ROLE, write_args(), "00000000-0000-0000-0000-000000000001", id="role"
        ),
        pytest.param(catalog.EXCLUDE_GROUP, ca_args(), "contoso.onmicrosoft.com", id="ca"),
    ],
)
async def test_other_tenant_is_refused_before_any_request(
    sim: SimulatedTenant, tools: GraphTools, tool: str, args: dict[str, Any], other_tenant: str
) -> None:
    err = await refused(sim, tools, tool, args | {"tenant_id": other_tenant}, InputError)
    assert "tenant" in str(err)
