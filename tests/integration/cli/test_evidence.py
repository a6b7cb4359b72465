"""``breakglass evidence secret|token``: answers from the stored model exchanges and from a
proof bundle, with honest "unknown" when the bytes are gone."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from adapters.store import SqlStore, sqlite_url
from engine.cst import TokenKind, sign_token
from engine.lifecycle import Rules
from engine.ports import JobUpdate, ModelExchange
from tests.corpus.generate import AGENT_MODEL, agent_sim, model_call
from tests.corpus.generate import HERE as CORPUS
from tests.integration.cli.conftest import Cli, assert_one_line_error
from tests.support.engine_sim import JobSim

SECRET = 'hunter2-"prod"-9f3k'
TRUST = str(CORPUS / "trust.json")


def agent_job(
    prompts: list[str], answers: list[str] | None = None
) -> tuple[JobSim, list[ModelExchange]]:
    sim = JobSim(rules=Rules(approvers=frozenset({"u-bob", "u-carol"}), model=AGENT_MODEL))
    sim.request()
    sim.advance(minutes=2)
    sim.approve_both()
    exchanges = []
    for n, prompt in enumerate(prompts, start=1):
        sim.advance(seconds=1)
        exchanges.append(model_call(sim, n, prompt, (answers or [""] * len(prompts))[n - 1]))
    return sim, exchanges


def seed(home: Path, sim: JobSim, kept: list[ModelExchange]) -> None:
    assert sim.job is not None
    job = sim.job

    home.mkdir(parents=True, exist_ok=True)

    async def write() -> None:
        async with await SqlStore.open(sqlite_url(home)) as store:
            update = JobUpdate(job.job_id, 0, job.state, job.to_json(), chain=sim.records)
            await store.create_job(update)
            for exchange in kept:
                await store.put_exchange(exchange)

    asyncio.run(write())


def receipt_hashes(sim: JobSim) -> list[str]:
    return [
        r.envelope["payload_hash_b64u"]
        for r in sim.records
        if r.envelope is not None and r.envelope["envelope_type"] == "gateway_receipt"
    ]


@pytest.fixture
def stdin_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(SECRET.encode() + b"\n")))


def test_a_secret_that_was_sent_is_found_with_its_receipt(
    cli: Cli, home: Path, stdin_secret: None
) -> None:
    sim, exchanges = agent_job([f"reset with password {SECRET} please", "verify the grant"])
    seed(home, sim, exchanges)
    result = cli("evidence", "secret", "--job", "job-0001")
    first, second = receipt_hashes(sim)
    assert result.code == 1
    assert result.last_line.startswith("ANSWER: YES")
    assert f"receipt {first}  contains (sent)" in result.out
    assert f"receipt {second}  clean" in result.out
    assert "hunter2" not in result.out + result.err


def test_a_secret_that_was_not_sent_is_not_found(cli: Cli, home: Path, stdin_secret: None) -> None:
    sim, exchanges = agent_job(["plan the grant", "verify the grant"])
    seed(home, sim, exchanges)
    result = cli("evidence", "secret", "--job", "job-0001", "--json")
    assert result.code == 0
    assert result.json["verdict"] == "not_seen"
    assert [c["status"] for c in result.json["calls"]] == ["clean", "clean"]
    assert [c["receipt_hash_b64u"] for c in result.json["calls"]] == receipt_hashes(sim)


def test_a_secret_the_model_answered_with_is_found(cli: Cli, home: Path, tmp_path: Path) -> None:
    sim, exchanges = agent_job(["what is the password?"], [f"it is {SECRET}"])
    seed(home, sim, exchanges)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_bytes(SECRET.encode())
    result = cli("evidence", "secret", "--job", "job-0001", "--secret-file", str(secret_file))
    assert result.code == 1
    assert "contains (received)" in result.out


def test_calls_past_retention_make_the_answer_unknown(
    cli: Cli, home: Path, stdin_secret: None
) -> None:
    sim, exchanges = agent_job(["plan the grant", "verify the grant"])
    seed(home, sim, exchanges[1:])  # the first call's bytes were purged
    result = cli("evidence", "secret", "--job", "job-0001")
    assert result.code == 1
    assert f"receipt {receipt_hashes(sim)[0]}  absent" in result.out
    assert "past the retention period" in result.out
    assert result.last_line.startswith("ANSWER: UNKNOWN")


def test_the_secret_is_never_taken_from_argv(cli: Cli) -> None:
    assert_one_line_error(cli("evidence", "secret", "--job", "job-0001", SECRET), 2)


def test_an_empty_secret_is_refused(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n")))
    assert_one_line_error(cli("evidence", "secret", "--job", "job-0001"), 2)


# --------------------------------------------------------------------------- token


def test_token_bindings_of_a_good_bundle_are_proven(cli: Cli) -> None:
    result = cli("evidence", "token", str(CORPUS / "good_agent.bundle.json"), "--trust", TRUST)
    as_json = cli(
        "evidence", "token", str(CORPUS / "good_agent.bundle.json"), "--trust", TRUST, "--json"
    ).json
    assert result.code == 0
    rows = as_json["tokens"]
    assert {r["kind"] for r in rows} == {"agent", "rollback"}
    for row in rows:
        assert row["proven"]
        assert row["job_id"] == "job-0001"
        assert f"  WPC hash  {row['wpc_hash_b64u']}" in result.out
    assert result.out.count("  PROVEN") == len(rows)


def test_token_bindings_of_a_tampered_bundle_are_not_proven(cli: Cli) -> None:
    result = cli("evidence", "token", str(CORPUS / "swapped_policy.bundle.json"), "--trust", TRUST)
    assert result.code == 1
    assert "NOT PROVEN: bundle_valid, wpc_in_bundle" in result.out


def test_a_presented_token_is_matched_to_its_issue_event(cli: Cli, tmp_path: Path) -> None:
    sim = agent_sim()
    assert sim.job is not None
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(sim.bundle()))
    token = tmp_path / "cst.jws"
    token.write_text(sign_token(sim.job.tokens[0].claims, sim.keys.issuer))
    result = cli(
        "evidence", "token", str(bundle), "--trust", TRUST, "--token-file", str(token), "--json"
    )
    assert result.code == 0
    (row,) = result.json["tokens"]
    assert row["checks"]["presented_token_matches"] is True
    assert row["jti"] == sim.job.tokens[0].jti
    assert row["kind"] == TokenKind.AGENT


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read {path}: No such file or directory"), (b"\xff", "not UTF-8 text")],
)
def test_a_token_file_that_cannot_be_read_is_named(
    cli: Cli, tmp_path: Path, content: bytes | None, says: str
) -> None:
    path = tmp_path / "cst.jws"
    if content is not None:
        path.write_bytes(content)
    bundle = str(CORPUS / "good.bundle.json")
    result = cli("evidence", "token", bundle, "--trust", TRUST, "--token-file", str(path))
    assert_one_line_error(result, 2)
    assert says.format(path=path) in result.err


def test_an_unknown_job_is_not_answered_no(cli: Cli, home: Path, stdin_secret: None) -> None:
    seed(home, *agent_job(["plan the grant"]))
    result = cli("evidence", "secret", "--job", "job-none")
    assert_one_line_error(result, 2)
    assert "no job job-none in this store" in result.err


def test_a_question_creates_no_home_and_no_store(cli: Cli, home: Path, stdin_secret: None) -> None:
    result = cli("evidence", "secret", "--job", "job-0001")
    assert_one_line_error(result, 2)
    assert f"no database at {home / 'breakglass.db'}" in result.err
    assert not home.exists()
    home.mkdir()
    assert_one_line_error(cli("evidence", "secret", "--job", "job-0001"), 2)
    assert list(home.iterdir()) == []


def test_control_characters_in_the_job_are_shown_escaped(
    cli: Cli, home: Path, stdin_secret: None
) -> None:
    seed(home, *agent_job(["plan the grant"]))
    result = cli("evidence", "secret", "--job", "x\x1b]0;PWNED\x07\x1b[2J")
    assert_one_line_error(result, 2)
    assert "\x1b" not in result.err
    assert "\x07" not in result.err
    assert "no job x[U+001B]]0;PWNED[U+0007][U+001B][2J in this store" in result.err


def test_verify_lists_each_model_route_and_flags_one_outside_the_wpc(cli: Cli) -> None:
    good = cli("verify", str(CORPUS / "good_agent.bundle.json"), "--trust", TRUST)
    assert good.code == 0
    assert good.out.count("scripted:breakglass-agent  allowed  receipt ") == 2
    bad = cli("verify", str(CORPUS / "model_outside_route.bundle.json"), "--trust", TRUST)
    assert bad.code == 1
    assert "scripted:gpt-unapproved  OUTSIDE THE WPC" in bad.out
    assert bad.last_line == "INVALID: BREAKGLASS_MODEL_OUTSIDE_POLICY"
