"""The activity summary (issue 17 §5): compact by construction, hashed over what was read,
and bound by the verifier to the receipted read, so editing it fails verification."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine import activity
from engine.bundle import MAX_METADATA_BYTES, metadata_size
from engine.canonical import jcs
from engine.envelope import sign_envelope
from engine.timeutil import parse_iso
from engine.verify import verify_bundle
from tests.corpus.generate import good_sim
from tests.support import engine_sim
from tests.support.engine_sim import JobSim, trust_for
from tests.unit.engine.test_bundle_size import MAX_EXTENSIONS, close, extend, long_job

MISMATCH = "BREAKGLASS_ACTIVITY_MISMATCH"


def worst_audits(n: int = 40) -> list[dict[str, Any]]:
    """Many operations with long names, each on long-named targets."""
    return [
        {
            "activityDisplayName": f"{'Operation with a very long display name ' * 3}{i:02d}",
            "targetResources": [
                {"userPrincipalName": f"{'someone-with-a-long-name' * 3}{j}@example.test"}
                for j in range(4)
            ],
        }
        for i in range(n)
    ]


def test_the_operations_kept_stay_within_their_byte_budget_and_the_rest_is_counted() -> None:
    summary = activity.summarize_audits(worst_audits())
    assert len(jcs(summary["operations"])) <= activity.OPERATION_BYTES
    assert summary["operations"]  # at least the most frequent one is named
    assert summary["count"] == 40
    assert summary["more"] == 40 - len(summary["operations"])
    for op in summary["operations"]:
        assert len(op["name"]) <= activity.MAX_NAME
        assert len(op["targets"]) <= activity.MAX_TARGETS


def test_the_hash_names_exactly_the_entries_read() -> None:
    entries = worst_audits(3)
    first = activity.summarize_audits(entries)["hash_b64u"]
    changed = copy.deepcopy(entries)
    changed[2]["targetResources"][3]["userPrincipalName"] = "mallory@example.test"
    assert activity.summarize_audits(changed)["hash_b64u"] != first  # not in the summary text
    assert activity.summarize_audits(copy.deepcopy(entries))["hash_b64u"] == first


def test_sentences_for_a_read_and_for_unavailable_logs() -> None:
    sim = good_sim()
    assert sim.job is not None
    line = activity.sentence(sim.job.activity, "Alice")
    assert line is not None
    assert line.startswith("during the window Alice did: Reset user password x2 on erin@")
    assert "signed in 3 time(s)" in line
    assert activity.sentence(activity.unavailable("throttled"), "Alice") == (
        "activity: unavailable (throttled)"
    )
    assert activity.sentence(None, "Alice") is None


def test_a_worst_case_summary_beside_five_extensions_stays_under_the_metadata_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_sim, "SAMPLE_AUDITS", worst_audits())
    long_app = {"userId": "u-alice", "appDisplayName": "An application name " * 5}
    monkeypatch.setattr(engine_sim, "SAMPLE_SIGN_INS", [long_app] * 9)
    sim = long_job()
    for _ in range(MAX_EXTENSIONS):
        extend(sim, "approve")
    bundle = close(sim)
    assert bundle["payload"]["metadata"]["breakglass"]["run"]["activity"]["status"] == "read"
    assert metadata_size(bundle["payload"]) < MAX_METADATA_BYTES
    assert verify_bundle(bundle, trust_for(sim.keys)).valid


def resigned(sim: JobSim, edit: Any) -> dict[str, Any]:
    """The job's bundle with ``edit`` applied to its run metadata, signed again with the
    bot's own key (what a producer hiding something could do)."""
    bundle = copy.deepcopy(sim.bundle())
    payload = bundle["payload"]
    edit(payload["metadata"]["breakglass"]["run"])
    return sign_envelope("proof_bundle", payload, sim.keys.agent, parse_iso(bundle["issued_at"]))


def test_the_untouched_bundle_verifies_with_its_summary() -> None:
    sim = good_sim()
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons


def _fewer_sign_ins(run: dict[str, Any]) -> None:
    run["activity"]["result"]["sign_ins"]["count"] = 0


def _another_receipt(run: dict[str, Any]) -> None:
    run["activity"]["receipt_id"] = "tr_job-0001_000003"


def _shorter_window(run: dict[str, Any]) -> None:
    run["activity"]["result"]["window"]["until"] = run["activity"]["result"]["window"]["since"]


def _forged_log_hash(run: dict[str, Any]) -> None:
    run["activity"]["result"]["audits"]["hash_b64u"] = "A" * 43


def _left_out(run: dict[str, Any]) -> None:
    del run["activity"]  # the read is receipted; its summary is hidden


@pytest.mark.parametrize(
    "edit", [_fewer_sign_ins, _another_receipt, _shorter_window, _forged_log_hash, _left_out]
)
def test_an_edited_summary_fails_verification(edit: Any) -> None:
    sim = good_sim()
    report = verify_bundle(resigned(sim, edit), trust_for(sim.keys))
    assert not report.valid
    assert MISMATCH in report.reason_codes


def test_unavailable_activity_verifies_and_a_malformed_record_does_not() -> None:
    sim = good_sim()

    def unavailable(run: dict[str, Any]) -> None:
        run["activity"] = activity.unavailable("the logs were not read within 90 s")

    assert verify_bundle(resigned(sim, unavailable), trust_for(sim.keys)).valid

    def malformed(run: dict[str, Any]) -> None:
        run["activity"] = {"status": "fine"}

    report = verify_bundle(resigned(sim, malformed), trust_for(sim.keys))
    assert not report.valid
    assert "SCHEMA_VALIDATION_FAILED" in report.reason_codes
