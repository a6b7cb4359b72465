"""A rotating template's worst case still fits the bundle's 16 KiB metadata cap with margin:
maximum text, every extension it may have, the worst activity summary and the most
credentials a job may add. One more credential write is refused at the gateway (receipted,
nothing sent, the job goes on); one more extension request is refused too."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from engine import catalog
from engine.access import access_from_config
from engine.bundle import MAX_METADATA_BYTES, metadata_size
from engine.chain import TOOL_CALL
from engine.containment import MAX_DERIVED_CREDENTIALS, MAX_EXTENSIONS_WHEN_ROTATING
from engine.errors import CommandRefused
from engine.job import ACTIVE
from engine.lifecycle import Extend, Rules
from engine.receipts import content_hash
from engine.tools import ToolResult
from engine.verify import verify_bundle
from tests.support import engine_sim
from tests.support.engine_sim import ALICE, JobSim, trust_for
from tests.unit.engine.test_activity import worst_audits
from tests.unit.engine.test_bundle_size import GUID, close, extend, long_job

MARGIN = 500  # bytes the worst case must leave under the cap
JOB_ID = "job-0001"


def rotating_rules(sim_rules: Rules) -> Rules:
    table = {
        "rotate_credentials": ["application_password"],
        "principals": [GUID],
        "roles": [GUID],
    }
    return replace(sim_rules, access=access_from_config({"entra-role": table}, {}))


def longest_add(n: int) -> tuple[dict[str, Any], ToolResult]:
    """The largest arguments the tool's schema admits, and the largest result the Graph
    adapter returns for them (adapters/graph/credentials.py: keyId, hint, the display name
    cut to 60 characters plus the job marker, end date, a hash of the secret)."""
    arguments = {
        "tenant_id": engine_sim.TENANT,
        "application_id": GUID,
        "job_id": JOB_ID,
        "display_name": "D" * 100,
    }
    result = {
        "key_id": f"0f9a3c0e-1111-4a2b-9c3d-5e6f7a8b9c{n:02d}",
        "hint": "abc",
        "display_name": f"{'D' * 60} [breakglass job={JOB_ID} dep={'deployment-name' * 4}]",
        "end_date_time": "2028-11-25T09:00:00.1234567Z",
        "recovered": True,
        "secret_sha256": "f" * 64,
        "application_id": GUID,
    }
    return arguments, ToolResult("success", result)


def add_credential(sim: JobSim, n: int) -> None:
    sim.advance(seconds=5)
    arguments, result = longest_add(n)
    sim.call(catalog.ADD_APP_PASSWORD, arguments, result=result)


def worst_rotating_job(monkeypatch: pytest.MonkeyPatch, credentials: int) -> JobSim:
    monkeypatch.setattr(engine_sim, "SAMPLE_AUDITS", worst_audits())
    long_app = {"userId": "u-alice", "appDisplayName": "An application name " * 5}
    monkeypatch.setattr(engine_sim, "SAMPLE_SIGN_INS", [long_app] * 9)
    sim = long_job(rotating_rules(JobSim().rules))
    for n in range(credentials):
        add_credential(sim, n)
    for _ in range(MAX_EXTENSIONS_WHEN_ROTATING):
        extend(sim, "approve")
    return sim


def test_the_worst_rotating_job_fits_under_the_cap_with_margin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = worst_rotating_job(monkeypatch, MAX_DERIVED_CREDENTIALS)
    assert sim.job is not None
    assert len(sim.job.derived_rollback) == MAX_DERIVED_CREDENTIALS
    bundle = close(sim)
    run = bundle["payload"]["metadata"]["breakglass"]["run"]
    assert run["activity"]["status"] == "read"
    assert len(run["derived_rollback"]) == MAX_DERIVED_CREDENTIALS
    size = metadata_size(bundle["payload"])
    assert size <= MAX_METADATA_BYTES - MARGIN, size
    report = verify_bundle(bundle, trust_for(sim.keys))
    assert report.valid, report.reasons


def test_a_credential_write_past_the_limit_is_refused_and_receipted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = worst_rotating_job(monkeypatch, MAX_DERIVED_CREDENTIALS)
    assert sim.job is not None
    before = sim.job
    add_credential(sim, MAX_DERIVED_CREDENTIALS)
    assert sim.job.state == ACTIVE  # refused like a tool the WPC does not allow: no kill
    assert sim.job.derived_rollback == before.derived_rollback  # nothing to remove at the end
    receipt = sim.records[-1].envelope
    assert sim.records[-1].event["event_type"] == TOOL_CALL
    assert receipt is not None
    body = receipt["payload"]
    assert body["tool_name"] == catalog.ADD_APP_PASSWORD
    assert body["result_status"] == "error"
    assert body["result_hash_b64u"] == content_hash({"refused": "CREDENTIAL_LIMIT"})
    assert sim.job.last_tool_call == f"{catalog.ADD_APP_PASSWORD}: error"
    report = verify_bundle(close(sim), trust_for(sim.keys))
    assert report.valid, report.reasons


def test_a_rotating_job_takes_fewer_extension_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = worst_rotating_job(monkeypatch, 0)
    assert sim.job is not None
    before = sim.job
    with pytest.raises(CommandRefused) as err:
        sim.do(Extend(ALICE, 10))
    assert err.value.reason == "EXTENSION_LIMIT"
    assert sim.job is before
