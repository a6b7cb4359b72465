"""``make bench`` writes its floors and ratios beside the figures they judge. Runs the
benchmarks at a tiny scale: what is checked is the file, never the speed (the speed goals
are ``make bench``'s business)."""

import json
from pathlib import Path

from bench.run import GATEWAY_RATIO_GOAL, VERIFY_RATIO_GOAL, Scale, collect, table, write_results

FLOORS = (
    "sqlite_commit_floor_p50_ms",
    "gateway_pure_decision_p50_ms",
    "ed25519_verify_floor_10k_s",
)
MEASURED = ("gateway_decision_p50_ms", "bundle_verify_10k_s", "kill_to_refusal_p50_ms")
RATIOS = {"gateway_p50_ratio": GATEWAY_RATIO_GOAL, "verify_10k_ratio": VERIFY_RATIO_GOAL}


def test_results_file_holds_the_floors_and_the_ratios_to_them(tmp_path: Path) -> None:
    results = collect(Scale(ed25519=40, gateway_calls=6, kill_rounds=1, receipts=4), extras=())
    path = tmp_path / "results.json"
    write_results(results, path)

    written = json.loads(path.read_text())
    for name in (*FLOORS, *MEASURED):
        assert written[name]["value"] > 0, name
    for name, goal in RATIOS.items():
        assert written[name]["unit"] == "ratio"
        assert written[name]["goal"] == goal
    gateway_floor = (
        written["sqlite_commit_floor_p50_ms"]["value"]
        + written["gateway_pure_decision_p50_ms"]["value"]
    )
    expected = written["gateway_decision_p50_ms"]["value"] / gateway_floor
    assert abs(written["gateway_p50_ratio"]["value"] - expected) < 0.01 * expected + 0.002
    expected = (
        written["bundle_verify_10k_s"]["value"] / written["ed25519_verify_floor_10k_s"]["value"]
    )
    assert abs(written["verify_10k_ratio"]["value"] - expected) < 0.01 * expected + 0.002
    printed = table(written)
    assert all(name in printed for name in (*FLOORS, *RATIOS))
