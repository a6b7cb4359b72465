"""``breakglass verify``: the tamper corpus gives exit 0 or exit 1 with its code; unusable
input gives exit 2."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from bot.commands.base import MAX_BUNDLE_BYTES
from tests.corpus.generate import HERE as CORPUS
from tests.corpus.generate import agent_sim, resign
from tests.integration.cli.conftest import Cli, Result, assert_one_line_error, write
from tests.support.shared import require_shared

EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text())
TRUST = str(CORPUS / "trust.json")


def bundle(name: str) -> str:
    return str(CORPUS / f"{name}.bundle.json")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_verdicts(cli: Cli, name: str) -> None:
    human = cli("verify", bundle(name), "--trust", TRUST)
    as_json = cli("verify", bundle(name), "--trust", TRUST, "--json")
    assert human.err == as_json.err == ""
    if EXPECTED[name] == "OK":
        assert (human.code, human.last_line) == (0, "VALID")
        assert (as_json.code, as_json.json["valid"], as_json.json["reason_codes"]) == (
            0,
            True,
            ["OK"],
        )
        return
    assert human.code == as_json.code == 1
    assert human.last_line.startswith("INVALID: ")
    assert EXPECTED[name] in human.last_line.removeprefix("INVALID: ").split(", ")
    assert as_json.json["valid"] is False
    assert EXPECTED[name] in as_json.json["reason_codes"]


def test_human_report_of_a_good_bundle(cli: Cli) -> None:
    result = cli("verify", bundle("good"), "--trust", TRUST)
    summary = cli("verify", bundle("good"), "--trust", TRUST, "--json").json
    out = result.out
    assert summary["policy_id"] in out
    assert summary["policy_hash_b64u"] in out
    assert "requester   u-alice" in out
    for approval in summary["approvals"]:
        assert f"{approval['approver']}  explicit_approve  {approval['at']}" in out
    for token in summary["tokens"]:
        assert f"{token['jti']}  {token['kind']}  {token['from']} to {token['until']}" in out
    for call in summary["timeline"]:
        assert f"{call['at']}  {call['tool']}  {call['status']}" in out
    assert "model calls 0" in out
    assert "kill        not pressed" in out
    assert "rollback    verified" in out


def test_human_report_of_a_killed_job(cli: Cli) -> None:
    out = cli("verify", bundle("good_killed"), "--trust", TRUST).out
    assert "outcome     killed" in out
    assert "kill        by console:oncall" in out


def test_core_profile_on_our_bundle(cli: Cli) -> None:
    result = cli("verify", bundle("self_approval"), "--trust", TRUST, "--profile", "core")
    assert (result.code, result.last_line) == (0, "VALID")  # only break-glass rules catch it
    assert "profile     core" in result.out


def test_reference_allowlist_and_vectors(cli: Cli) -> None:
    root = require_shared() / "clawsig" / "conformance"
    trust = str(root / "allowlists.v1.json")
    good = cli("verify", str(root / "proof_bundle_pass.v1.json"), "--trust", trust)
    assert (good.code, good.last_line) == (0, "VALID")
    assert "bundle      bundle_conformance_001" in good.out
    bad = cli("verify", str(root / "proof_bundle_fail_invalid_signature.v1.json"), "--trust", trust)
    assert (bad.code, bad.last_line) == (1, "INVALID: SIGNATURE_INVALID")


def test_default_trust_is_the_local_keys(cli: Cli) -> None:
    assert cli("keys", "init").code == 0
    result = cli("verify", bundle("good"))
    assert (result.code, result.last_line) == (1, "INVALID: SIGNER_NOT_ALLOWED")


def test_bundle_from_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Path(bundle("good")).read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert cli("verify", "-", "--trust", TRUST).code == 0


UNUSABLE_BUNDLES = {
    "not_json": b"this is not json",
    "empty": b"",
    "array": b"[1, 2]",
    "string": b'"bundle"',
    "duplicate_keys": b'{"payload": {}, "payload": {}}',
    "nan": b'{"payload": NaN}',
    "not_utf8": b'{"payload": "\xff"}',
    "huge_integer": b'{"payload": ' + b"9" * 4301 + b"}",  # int() refuses over 4300 digits
}


@pytest.mark.parametrize("name", sorted(UNUSABLE_BUNDLES))
def test_unusable_bundle_exits_2(cli: Cli, tmp_path: Path, name: str) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(UNUSABLE_BUNDLES[name])
    assert_one_line_error(cli("verify", str(path), "--trust", TRUST), 2)


def test_unreadable_bundle_exits_2(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("verify", str(tmp_path / "missing.json"), "--trust", TRUST), 2)
    assert_one_line_error(cli("verify", str(tmp_path), "--trust", TRUST), 2)


UNUSABLE_TRUST = {
    "not_json": "{",
    "array": "[]",
    "no_agents": '{"trust_version": "1", "agent_dids": []}',
    "mistyped": '{"agent_dids": "did:key:z6Mk"}',
}
GOOD_TRUST = json.loads(Path(TRUST).read_text())
AGENT = GOOD_TRUST["agent_dids"][0]
# A good trust file with one field changed, and what the one-line error must name.
BAD_TRUST_FIELDS = {
    "agent_did_list": ({"agent_did": [AGENT]}, "field agent_did must be a DID string"),
    "agent_did_object": ({"agent_did": {"did": AGENT}}, "field agent_did must be a DID string"),
    "agent_dids_nested": ({"agent_dids": [[AGENT]]}, "field agent_dids must be a list of DIDs"),
    "version_99": ({"trust_version": "99"}, "has trust_version '99'"),
    "version_integer": ({"trust_version": 1}, "has trust_version 1;"),
    "malformed_did": ({"agent_dids": [AGENT, "not-a-did"]}, "field agent_dids: 'not-a-did'"),
    "malformed_gateway": (
        {"gateway_receipt_signer_dids": ["did:key:z6Mk"]},
        "field gateway_receipt_signer_dids: 'did:key:z6Mk' is not a usable did:key",
    ),
}
UNUSABLE_TRUST |= {
    name: json.dumps(GOOD_TRUST | change) for name, (change, _) in BAD_TRUST_FIELDS.items()
}


@pytest.mark.parametrize("name", sorted(UNUSABLE_TRUST))
def test_unusable_trust_exits_2(cli: Cli, tmp_path: Path, name: str) -> None:
    trust = write(tmp_path / "trust.json", UNUSABLE_TRUST[name])
    assert_one_line_error(cli("verify", bundle("good"), "--trust", str(trust)), 2)


@pytest.mark.parametrize("name", sorted(BAD_TRUST_FIELDS))
def test_a_bad_trust_file_is_named_not_the_bundle(cli: Cli, tmp_path: Path, name: str) -> None:
    # Not SIGNER_NOT_ALLOWED (exit 1), not a silent fall back to the core profile (exit 0).
    trust = write(tmp_path / "trust.json", UNUSABLE_TRUST[name])
    result = cli("verify", bundle("good"), "--trust", str(trust))
    assert_one_line_error(result, 2)
    assert f"trust.json: trust file {BAD_TRUST_FIELDS[name][1]}" in result.err


def test_a_huge_integer_is_refused_in_one_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(UNUSABLE_BUNDLES["huge_integer"])
    result = cli("verify", str(path), "--trust", TRUST)
    assert_one_line_error(result, 2)
    assert "input.json: integer of 4301 digits is too large" in result.err


def test_an_oversize_bundle_is_described_by_the_limit(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as sparse:
        sparse.truncate(2 * MAX_BUNDLE_BYTES)  # only limit + 1 bytes are read
    result = cli("verify", str(path), "--trust", TRUST)
    assert_one_line_error(result, 2)
    assert result.err.strip().endswith("big.json: JSON body is larger than 32 MiB")


def test_truncated_json_says_where_once(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "cut.json", '{"payload": "abc')
    result = cli("verify", str(path), "--trust", TRUST)
    assert_one_line_error(result, 2)
    assert result.err.strip().endswith("Unterminated string starting at character 12")


def test_no_trust_and_no_keys_exits_2(cli: Cli) -> None:
    result = cli("verify", bundle("good"))
    assert_one_line_error(result, 2)
    assert "keys init" in result.err


def test_a_json_object_that_is_no_bundle_is_invalid_not_unusable(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "object.json", '{"hello": "world"}')
    result = cli("verify", str(path), "--trust", TRUST)
    assert (result.code, result.last_line) == (1, "INVALID: MALFORMED_ENVELOPE")


def hostile_report(cli: Cli, tmp_path: Path, approver: str, *flags: str) -> Result:
    """``verify`` of a bundle whose approvals name ``approver`` (re-signed by nobody: the
    bundle is invalid, and still summarised)."""
    sim = agent_sim()
    bundle = copy.deepcopy(sim.bundle())
    for approval in bundle["payload"]["human_approval_receipts"]:
        approval["approver_subject"] = approver
    hostile = write(tmp_path / "hostile.json", json.dumps(resign(bundle, sim.keys.agent)))
    result = cli("verify", str(hostile), "--trust", TRUST, *flags)
    assert result.code == 1
    return result


def test_escape_sequences_in_bundle_text_never_reach_the_terminal(cli: Cli, tmp_path: Path) -> None:
    result = hostile_report(cli, tmp_path, "x\x1b]0;PWNED\x07\x1b[2Jy\u009b31m")
    assert "x[U+001B]]0;PWNED[U+0007][U+001B][2Jy[U+009B]31m" in result.out
    assert not any(c in result.out for c in "\x1b\x07\u009b")
    as_json = hostile_report(cli, tmp_path, "x\x1b]0;PWNED\x07", "--json")
    assert as_json.out.isascii()


def test_a_newline_in_bundle_text_forges_no_line_of_the_report(cli: Cli, tmp_path: Path) -> None:
    # A black-box run killed a job "as" a name holding a newline and a line of its own.
    result = hostile_report(cli, tmp_path, "bob\nFORGED    line\r\tVALID")
    assert "bob[U+000A]FORGED    line[U+000D][U+0009]VALID" in result.out
    assert not any(line.startswith("FORGED") for line in result.out.splitlines())
