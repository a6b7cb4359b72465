"""``breakglass demo --executor openclaw --scenario injected`` as a newcomer runs it: the
real OpenClaw under the service, the injected model's out-of-scope target refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.compact import expand
from tests.integration.openclaw.conftest import needs_openclaw

pytestmark = [needs_openclaw, pytest.mark.slow]


def test_injected_demo_with_openclaw_is_killed_with_model_calls_receipted(
    tmp_path: Path,
) -> None:
    command = ["demo", "--executor", "openclaw", "--scenario", "injected", "--json"]
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", *command],
        env={**os.environ, "BREAKGLASS_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,  # a bound against a hang, not a measure: the demo has its own deadlines
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert (result["outcome"], result["still_privileged"]) == ("killed", [])
    assert result["bundle_valid"]
    assert result["rollback_verified"]
    payload = json.loads(Path(result["bundle_path"]).read_text())["payload"]
    model_calls = payload.get("receipts", [])
    assert model_calls, "no model call was receipted by our proxy"
    route = {(r["payload"]["gateway_id"], r["payload"]["model"]) for r in model_calls}
    assert route == {("breakglass-model-proxy", "breakglass-scripted-sim")}
    chain = [e["event_type"] for e in payload["event_chain"]]
    assert chain.count("llm_call") == len(model_calls)
    stops = expand(payload["metadata"]["breakglass"].get("executor_stops", []), "stops")
    assert [s["payload"]["reason"] for s in stops] == ["halted"]  # the kill's halt, receipted
    assert chain.index("executor_stopped") < chain.index("run_end")
