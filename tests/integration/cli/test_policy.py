"""``breakglass policy template|sign|verify|hash``."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.keys import load_keys, trust_document
from engine.wpc import Policy, policy_hash, verify_wpc
from tests.corpus.generate import HERE as CORPUS
from tests.integration.cli.conftest import (
    ROLE_ARGS,
    Cli,
    Signed,
    assert_one_line_error,
    write,
)
from tests.support.shared import require_shared


def test_template_entra_role(keyed: Cli, home: Path) -> None:
    result = keyed(*ROLE_ARGS, "--job", "job-7")
    assert result.code == 0, result.err
    policy = Policy.from_payload(result.json)
    assert policy.issuer_did == load_keys(home).publisher.did
    assert policy.job_id == "job-7"
    assert policy.terms["template"] == "entra-role"
    assert policy.terms["requester"] == "u-alice"
    assert policy.cst_max_ttl_seconds == 30 * 60


def test_template_generates_a_job_id(keyed: Cli) -> None:
    first, second = keyed(*ROLE_ARGS), keyed(*ROLE_ARGS)
    ids = [Policy.from_payload(r.json).job_id for r in (first, second)]
    assert all(re.fullmatch(r"job-[0-9a-f]{12}", i) for i in ids)
    assert ids[0] != ids[1]


def test_template_ca_exclusion_with_defaults(keyed: Cli) -> None:
    result = keyed(
        "policy", "template", "ca-exclusion",
        "--tenant", "t-1", "--policy", "ca-7", "--group", "g-bg",
        "--minutes", "15", "--requester", "u-bob",
    )  # fmt: skip
    assert result.code == 0, result.err
    policy = Policy.from_payload(result.json)
    assert policy.terms["template"] == "ca-exclusion"
    assert policy.terms["action"]["arguments"]["group_id"] == "g-bg"
    assert policy.terms["ticket"] == "none"
    assert "none given" in policy.terms["justification"]


def test_sign_verify_and_hash_agree(sign: Callable[[str], Signed], keyed: Cli, home: Path) -> None:
    signed = sign("job-1")
    envelope = json.loads(signed.envelope.read_text())
    policy = verify_wpc(envelope, {load_keys(home).publisher.did})
    assert policy.payload == json.loads(signed.payload.read_text())
    verified = keyed("policy", "verify", str(signed.envelope))
    assert (verified.code, verified.out.split()[:2]) == (0, ["VALID", policy.policy_hash_b64u])
    for path in (signed.payload, signed.envelope):
        hashed = keyed("policy", "hash", str(path))
        assert (hashed.code, hashed.out.strip()) == (0, policy.policy_hash_b64u)
    assert policy_hash(envelope["payload"]) == policy.policy_hash_b64u


def test_sign_reads_stdin(keyed: Cli, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    payload = keyed(*ROLE_ARGS, "--job", "job-1").out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(payload.encode())))
    result = keyed("policy", "sign", "-")
    assert result.code == 0, result.err
    verify_wpc(result.json, {load_keys(home).publisher.did})


def test_verify_reports_the_reason_code(
    sign: Callable[[str], Signed], keyed: Cli, tmp_path: Path
) -> None:
    envelope = json.loads(sign("job-1").envelope.read_text())
    envelope["payload"]["metadata"]["breakglass"]["requester"] = "u-mallory"
    tampered = write(tmp_path / "tampered.json", json.dumps(envelope))
    result = keyed("policy", "verify", str(tampered))
    assert result.code == 1
    assert result.out.startswith("INVALID: HASH_MISMATCH")
    assert result.err == ""


def test_verify_against_another_trust_file(sign: Callable[[str], Signed], keyed: Cli) -> None:
    envelope = sign("job-1").envelope
    result = keyed("policy", "verify", str(envelope), "--trust", str(CORPUS / "trust.json"))
    assert (result.code, result.out.split()[:2]) == (1, ["INVALID:", "SIGNER_NOT_ALLOWED:"])


def test_verify_with_the_reference_allowlist_trusts_no_publisher(
    sign: Callable[[str], Signed], keyed: Cli
) -> None:
    allowlist = require_shared() / "clawsig" / "conformance" / "allowlists.v1.json"
    result = keyed("policy", "verify", str(sign("job-1").envelope), "--trust", str(allowlist))
    assert (result.code, result.out.split()[:2]) == (1, ["INVALID:", "SIGNER_NOT_ALLOWED:"])


def test_verify_with_our_own_trust_file(
    sign: Callable[[str], Signed], keyed: Cli, home: Path, tmp_path: Path
) -> None:
    trust = write(tmp_path / "trust.json", json.dumps(trust_document(load_keys(home))))
    result = keyed("policy", "verify", str(sign("job-1").envelope), "--trust", str(trust))
    assert result.code == 0


def test_sign_refuses_an_envelope_another_issuer_and_a_non_policy(
    sign: Callable[[str], Signed], keyed: Cli, tmp_path: Path
) -> None:
    signed = sign("job-1")
    assert_one_line_error(keyed("policy", "sign", str(signed.envelope)), 2)
    payload = json.loads(signed.payload.read_text())
    foreign = write(tmp_path / "foreign.json", json.dumps(payload | {"issuer_did": "did:key:zX"}))
    result = keyed("policy", "sign", str(foreign))
    assert_one_line_error(result, 2)
    assert "issuer_did" in result.err
    junk = write(tmp_path / "junk.json", json.dumps(payload | {"statements": []}))
    result = keyed("policy", "sign", str(junk))
    assert_one_line_error(result, 2)  # not a WPC: the input is unusable, nothing was signed
    assert "SCHEMA_VALIDATION_FAILED: not a WPC v2: statements must be" in result.err


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda _wpc: {"trust_version": "1", "agent_dids": []}, "no 'policy_version'"),
        (lambda wpc: wpc | {"metadata": "x"}, "a member has the wrong type"),
    ],
)
def test_sign_and_hash_name_a_file_that_is_no_wpc(
    sign: Callable[[str], Signed],
    keyed: Cli,
    tmp_path: Path,
    edit: Callable[[dict[str, object]], dict[str, object]],
    says: str,
) -> None:
    payload = json.loads(sign("job-1").payload.read_text())
    other = write(tmp_path / "other.json", json.dumps(edit(payload)))
    for command in ("sign", "hash"):
        result = keyed("policy", command, str(other))
        assert_one_line_error(result, 2)
        assert f"other.json: SCHEMA_VALIDATION_FAILED: not a WPC v2: {says}" in result.err
        assert "issuer_did" not in result.err  # the file's shape is the problem, not a key
