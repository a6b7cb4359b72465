"""The ``--json`` envelope and the exit code of ``openclaw agent exec`` as a run outcome."""

from __future__ import annotations

import json

import pytest

from adapters.openclaw.config import RunConfig
from adapters.openclaw.names import catalog_name, mcp_name, openclaw_name
from adapters.openclaw.runner import outcome_of
from engine import catalog
from engine.errors import ConfigError


def envelope(status: str = "ok", calls: int = 2, failures: int = 0, **extra: object) -> str:
    doc = {
        "ok": status == "ok",
        "status": status,
        "toolSummary": {"calls": calls, "tools": ["breakglass__x"], "failures": failures},
        "usage": {"input": 10, "output": 2, "total": 12},
    } | extra
    return json.dumps(doc, indent=2)  # pretty-printed, as OpenClaw prints it


def test_a_clean_run_is_ok() -> None:
    outcome = outcome_of(0, envelope())
    assert (outcome.ok, outcome.status, outcome.tool_calls, outcome.tools) == (
        True,
        "ok",
        2,
        ("breakglass__x",),
    )


def test_a_failed_tool_call_fails_the_run_though_the_exit_code_is_0() -> None:
    outcome = outcome_of(0, envelope(failures=1))
    assert not outcome.ok
    assert outcome.tool_failures == 1


@pytest.mark.parametrize(
    ("code", "status"),
    [(1, "error"), (2, "timeout")],
)
def test_non_zero_exits_fail(code: int, status: str) -> None:
    error = {"message": "boom", "kind": "model"}
    outcome = outcome_of(code, envelope(status=status, error=error))
    assert (outcome.ok, outcome.status, outcome.error) == (False, status, "boom")


@pytest.mark.parametrize(
    ("code", "status"),
    [(143, "terminated"), (-15, "terminated"), (-9, "killed"), (None, "killed")],
)
def test_a_stopped_process_without_an_envelope(code: int | None, status: str) -> None:
    outcome = outcome_of(code, "", halted=True)
    assert (outcome.ok, outcome.status, outcome.halted) == (False, status, True)


def test_garbage_on_stdout_is_unreadable_not_ok() -> None:
    outcome = outcome_of(0, 'log line\n"just a string"\n[1, 2]')
    assert (outcome.ok, outcome.status) == (False, "unreadable")


def test_an_envelope_after_log_lines_is_found() -> None:
    text = "starting\n" + json.dumps(json.loads(envelope()))
    assert outcome_of(0, text).ok


def test_a_halted_run_is_never_ok() -> None:
    assert not outcome_of(0, envelope(), halted=True).ok


def test_names_round_trip_and_unknown_names_pass_through_to_be_refused() -> None:
    assert catalog_name(mcp_name(catalog.WRITE_ROLE)) == catalog.WRITE_ROLE
    assert openclaw_name(catalog.READ_CA) == "breakglass__graph_read_ca_policy"
    assert catalog_name("exec") == "exec"
    with pytest.raises(ConfigError):
        mcp_name("breakglass.unknown.tool")


@pytest.mark.parametrize(
    "change",
    [{"proxy_url": "file:///etc/passwd"}, {"tools": []}, {"model": "other/provider-model"}],
)
def test_a_run_config_refuses_what_would_escape_it(change: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "proxy_url": "http://127.0.0.1:1/v1",
        "model": "m",
        "mcp_url": "http://127.0.0.1:1/mcp",
        "tools": [catalog.WRITE_ROLE],
        "cst": "t",
        "mcp_secret": "s",
    }
    with pytest.raises(ConfigError):
        RunConfig(**(fields | change))  # type: ignore[arg-type]
