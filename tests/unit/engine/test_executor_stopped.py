"""An executor run's end (halted or exited) is a signed record in the job's chain, in any
open state; the verifier accepts it anywhere before the terminal event and refuses a forged
or missing one."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from engine import chain
from engine import job as states
from engine.bundle import EXECUTOR_STOP_TYPE
from engine.compact import expand
from engine.envelope import sign_envelope
from engine.errors import CommandRefused
from engine.lifecycle import ExecutorStopped, Kill
from engine.verify import verify_bundle
from tests.support.engine_sim import BOB, JobSim, trust_for

HALTED = ExecutorStopped("halted", exit_code=143, signal="SIGTERM", status="terminated")
EXITED = ExecutorStopped("exited", exit_code=0, status="ok", tool_calls=2, failures=1)


def active() -> JobSim:
    sim = JobSim()
    sim.request()
    sim.approve_both()
    return sim


def stops(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return list(bundle["payload"]["metadata"]["breakglass"].get("executor_stops", []))


def test_a_run_end_is_a_signed_chain_record_and_the_bundle_verifies() -> None:
    sim = active()
    sim.run_write_and_verify()
    t = sim.do(EXITED)
    assert t.job.state == states.ACTIVE  # receipting never ends the window by itself
    (record,) = t.records
    assert record.event["event_type"] == chain.EXECUTOR_STOP
    assert record.envelope is not None
    assert record.envelope["envelope_type"] == EXECUTOR_STOP_TYPE
    assert record.envelope["payload"]["failures"] == 1
    sim.do(Kill(BOB))
    sim.do(HALTED)  # the halt after the kill: rolling back, the chain is still open
    sim.run_rollback()
    bundle = sim.bundle()
    assert [s["payload"]["reason"] for s in bundle_stops(bundle)] == ["exited", "halted"]
    report = verify_bundle(bundle, trust_for(sim.keys))
    assert report.valid, report.reasons


def bundle_stops(bundle: dict[str, Any]) -> list[Mapping[str, Any]]:
    return expand(stops(bundle), "stops")


def test_a_closed_chain_refuses_the_record_and_is_unchanged() -> None:
    sim = active()
    sim.do(Kill(BOB))
    sim.run_rollback()
    before = sim.job
    with pytest.raises(CommandRefused) as refused:
        sim.do(HALTED)
    assert refused.value.reason == "ALREADY_RESOLVED"
    assert sim.job == before


def test_an_unknown_reason_is_refused() -> None:
    sim = active()
    with pytest.raises(CommandRefused) as refused:
        sim.do(ExecutorStopped("crashed"))
    assert refused.value.reason == "INVALID_REASON"


def resigned(sim: JobSim, bundle: dict[str, Any], stops: list[Any] | None) -> dict[str, Any]:
    """The bundle re-signed by the agent with other stop records (so only they differ)."""
    payload = copy.deepcopy(bundle["payload"])
    meta = payload["metadata"]["breakglass"]
    if stops is None:
        del meta["executor_stops"]
    else:
        meta["executor_stops"] = stops
    return sign_envelope("proof_bundle", payload, sim.keys.agent, sim.now)


def test_a_forged_or_dropped_stop_record_fails_verification() -> None:
    sim = active()
    sim.do(HALTED)
    sim.do(Kill(BOB))
    sim.run_rollback()
    bundle = sim.bundle()
    (record,) = bundle_stops(bundle)
    forged_payload = {**record["payload"], "reason": "exited"}
    by_gateway = sign_envelope(EXECUTOR_STOP_TYPE, record["payload"], sim.keys.gateway, sim.now)
    forged = sign_envelope(EXECUTOR_STOP_TYPE, forged_payload, sim.keys.agent, sim.now)
    trust = trust_for(sim.keys)
    assert verify_bundle(resigned(sim, bundle, [dict(record)]), trust).valid
    assert not verify_bundle(resigned(sim, bundle, [by_gateway]), trust).valid
    report = verify_bundle(resigned(sim, bundle, [forged]), trust)
    assert "RECEIPT_BINDING_MISMATCH" in report.reason_codes
    report = verify_bundle(resigned(sim, bundle, None), trust)
    assert "BREAKGLASS_RECEIPT_MISSING" in report.reason_codes
