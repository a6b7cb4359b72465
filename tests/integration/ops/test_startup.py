"""``breakglass serve`` with each broken configuration prints ONE line naming the problem and
exits 2, never an internal error; a good start says what runs and leaves no state file."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.store import SqlStore, sqlite_url
from bot.keys import trust_document
from bot.shared_keys import RECORD, check_shared_keys
from tests.integration.ops.support import (
    REPO,
    breakglass,
    clean_environ,
    serve_state,
    start_serve,
)
from tests.support.engine_sim import fixed_keys

GRAPH_TOML = """
[tenant]
mode = "graph"
tenant_id = "00000000-0000-0000-0000-0000000000aa"
client_id = "00000000-0000-0000-0000-0000000000ab"
[policy]
approvers = ["00000000-0000-0000-0000-00000000000b", "00000000-0000-0000-0000-00000000000c"]
"""


def refused(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]
    assert "internal error" not in lines[0]
    return lines[0]


def test_missing_keys(tmp_path: Path) -> None:
    (tmp_path / "g.toml").write_text(GRAPH_TOML)
    env = clean_environ(tmp_path, BREAKGLASS_GRAPH_CLIENT_SECRET="graph-secret-value")
    done = breakglass(["serve", "--config", str(tmp_path / "g.toml"), "--port", "0"], env)
    refused(done, "missing key", "breakglass keys init")


def test_unreachable_postgresql_names_the_variable_not_the_password(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql+psycopg://bg:hunter2@127.0.0.1:{port}/nothing"
    done = breakglass(
        ["serve", "--port", "0"], clean_environ(tmp_path, BREAKGLASS_DATABASE_URL=url)
    )
    line = refused(done, "BREAKGLASS_DATABASE_URL", f"127.0.0.1:{port}")
    assert "hunter2" not in line


def test_fewer_than_two_approvers(tmp_path: Path) -> None:
    (tmp_path / "one.toml").write_text('[policy]\napprovers = ["only-one"]\n')
    done = breakglass(["serve", "--config", str(tmp_path / "one.toml")], clean_environ(tmp_path))
    refused(done, "policy.approvers", "at least two")


def test_half_configured_teams(tmp_path: Path) -> None:
    env = clean_environ(tmp_path, BREAKGLASS_TEAMS_APP_ID="00000000-0000-0000-0000-0000000000b0")
    done = breakglass(["serve", "--port", "0"], env)
    refused(done, "Teams is half-configured", "BREAKGLASS_TEAMS_TENANT_ID")


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = breakglass(["serve", "--port", str(port)], clean_environ(tmp_path))
    refused(done, "service.port", f"127.0.0.1:{port}", "already in use")


def test_a_secret_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[tenant]\nclient_secret = "oops-a-secret"\n')
    done = breakglass(["serve", "--config", str(tmp_path / "s.toml")], clean_environ(tmp_path))
    line = refused(done, "tenant.client_secret", "BREAKGLASS_GRAPH_CLIENT_SECRET_FILE")
    assert "oops-a-secret" not in line


@pytest.mark.slow
async def test_start_line_lifecycle_and_clean_stop(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = clean_environ(tmp_path, BREAKGLASS_LOG_LEVEL="debug")
    child = start_serve(env, log)
    try:
        state = await serve_state(child, tmp_path, log)
        assert state["public_url"] != state["internal_url"]
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    text = log.read_text()
    start = next(line for line in text.splitlines() if line.startswith("breakglass serving"))
    for part in ("store sqlite", "simulated tenant", "executor runbook", "chat console"):
        assert part in start
    assert "public http://127.0.0.1:" in start
    assert "internal http://127.0.0.1:" in start
    assert re.search(r"simulated tenant \S+ at http://127\.0\.0\.1:\d+;", start), start
    logged = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(entry["msg"].startswith("stopped") for entry in logged)
    assert any(entry["msg"].startswith("start-up heap frozen") for entry in logged)
    assert not (tmp_path / "serve.json").exists()  # no stale pid file


# In a process of its own: a frozen object is never collected, so a test process must not.
FREEZE = """
import gc, json
import bot.app
from bot.heap import freeze_start_up
before = len(gc.get_objects())
frozen = freeze_start_up()
print(json.dumps({"before": before, "frozen": frozen, "after": len(gc.get_objects())}))
"""


def test_a_frozen_start_up_heap_leaves_full_collections_little_to_walk() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FREEZE], capture_output=True, text=True, cwd=REPO, check=True
    )
    counts = json.loads(done.stdout)
    assert counts["frozen"] > 50_000  # the service's modules and SDKs, at the least
    assert counts["after"] < counts["before"] / 10  # what a full collection still walks


async def test_a_replica_with_keys_of_its_own_does_not_start(tmp_path: Path) -> None:
    # A replica that joined with other keys could not roll back the others' jobs, and what
    # it signed verified with no trust file (a black-box run with replicas).
    url = sqlite_url(tmp_path)  # the database every replica names
    store = await SqlStore.open(url)
    try:
        await check_shared_keys(store, fixed_keys(b"the first replica"))
    finally:
        await store.close()
    env = clean_environ(tmp_path / "home", BREAKGLASS_DATABASE_URL=url)
    done = breakglass(["serve", "--port", "0"], env)
    refused(done, "keys:", "same keys directory")

    store = await SqlStore.open(url)
    try:  # the first replica's keys are still the ones recorded
        recorded = await store.load_snapshot(RECORD)
        assert recorded == trust_document(fixed_keys(b"the first replica"))
    finally:
        await store.close()
