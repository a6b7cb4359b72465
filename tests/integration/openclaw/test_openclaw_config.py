"""The config the executor generates passes OpenClaw's own validator, and the validator
does reject what it should (so the positive check can fail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.openclaw.config import RunConfig, openclaw_config
from adapters.openclaw.install import Installation, openclaw_version, validate_generated
from adapters.openclaw.names import openclaw_name
from bot.commands.openclaw import sample_run
from engine import catalog
from engine.errors import ConfigError
from tests.integration.openclaw.conftest import needs_openclaw

pytestmark = needs_openclaw


def run_for(tools: list[str]) -> RunConfig:
    return RunConfig(
        proxy_url="http://127.0.0.1:9/v1",
        model="breakglass-scripted-sim",
        mcp_url="http://127.0.0.1:9/mcp",
        tools=tools,
        cst="header.claims.signature",
        mcp_secret="per-job-secret",
    )


def test_the_config_allows_exactly_the_wpc_tools_and_denies_the_rest() -> None:
    doc = openclaw_config(run_for([catalog.WRITE_ROLE, catalog.READ_ROLE]))
    tools = doc["tools"]
    assert tools["allow"] == [openclaw_name(catalog.WRITE_ROLE), openclaw_name(catalog.READ_ROLE)]
    assert tools["deny"] == ["group:runtime", "group:fs", "group:web"]
    assert tools["elevated"] == {"enabled": False}
    assert (tools["toolSearch"], tools["codeMode"]) == (False, {"enabled": False})
    assert doc["models"]["mode"] == "replace"
    assert list(doc["models"]["providers"]) == ["breakglass"]
    assert list(doc["mcp"]["servers"]) == ["breakglass"]


async def test_the_pinned_version_is_installed(installation: Installation, tmp_path: Path) -> None:
    assert await openclaw_version(installation, tmp_path) == "2026.9.6"


@pytest.mark.parametrize(
    "tools",
    [[catalog.WRITE_ROLE, catalog.READ_ROLE], [catalog.EXCLUDE_GROUP, catalog.READ_CA]],
    ids=["entra-role", "ca-exclusion"],
)
async def test_generated_configs_validate(
    installation: Installation, tmp_path: Path, tools: list[str]
) -> None:
    config = await validate_generated(installation, tmp_path, openclaw_config(run_for(tools)))
    assert config.stat().st_mode & 0o777 == 0o600  # it carries the CST


async def test_the_doctors_sample_validates(installation: Installation, tmp_path: Path) -> None:
    await validate_generated(installation, tmp_path, openclaw_config(sample_run()))


async def test_the_validator_rejects_an_unknown_key(
    installation: Installation, tmp_path: Path
) -> None:
    doc = openclaw_config(run_for([catalog.WRITE_ROLE]))
    doc["tools"]["allowEverything"] = True
    with pytest.raises(ConfigError, match="invalid"):
        await validate_generated(installation, tmp_path, doc)
