"""``Trust.from_json``: our trust file and the reference allowlist shapes are read; a trust
file with a mistyped field, an unknown version or a malformed DID is refused (InputError)
naming what is wrong, before any bundle could be blamed for it."""

from __future__ import annotations

from typing import Any

import pytest

from engine.did import Signer, did_from_public_key
from engine.errors import InputError
from engine.verify import Trust


def did(seed: int) -> str:
    """A fixed DID, so the test ids are the same on every run."""
    return Signer.from_seed(bytes([seed]) * 32).did


AGENT, GATEWAY = did(1), did(2)
OURS: dict[str, Any] = {
    "trust_version": "1",
    "agent_dids": [AGENT],
    "gateway_receipt_signer_dids": [GATEWAY],
    "token_issuer_dids": [did(3)],
    "registry_publisher_dids": [did(4)],
}


def test_our_trust_file_declares_breakglass() -> None:
    trust = Trust.from_json(OURS)
    assert trust.declares_breakglass
    assert trust.agent_dids == {AGENT}


def test_the_reference_allowlist_and_a_clawverify_config_read_as_core() -> None:
    reference = Trust.from_json({"vector_version": "1", "agent_did": AGENT})
    config = Trust.from_json(
        {"config_version": "1", "allowlists": {"gateway_receipt_signer_dids": [GATEWAY]}}
        | {"agent_dids": [AGENT]}
    )
    assert not reference.declares_breakglass
    assert not config.declares_breakglass
    assert reference.agent_dids == config.agent_dids == {AGENT}
    assert config.gateway_receipt_signer_dids == {GATEWAY}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("agent_did", [AGENT]),
        ("agent_did", {"did": AGENT}),
        ("agent_did", None),
        ("agent_dids", AGENT),
        ("agent_dids", [[AGENT]]),
        ("agent_dids", [{"did": AGENT}]),
        ("gateway_receipt_signer_dids", {"did": GATEWAY}),
        ("token_issuer_dids", [1]),
        ("registry_publisher_dids", GATEWAY),
        ("allowlists", [AGENT]),
    ],
)
def test_a_mistyped_field_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(InputError, match=f"field {field} must be"):
        Trust.from_json(OURS | {field: value})


@pytest.mark.parametrize("version", ["99", "2", "", 1, True, None, ["1"]])
def test_a_trust_version_we_do_not_write_is_refused(version: object) -> None:
    # Read as a reference allowlist, it would silently drop the break-glass rules.
    with pytest.raises(InputError, match="trust_version"):
        Trust.from_json(OURS | {"trust_version": version})


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-did",
        "",
        "did:key:z6Mk",
        AGENT.replace("did:key:", "did:web:"),
        AGENT + "x",
        did_from_public_key(bytes(32)),  # well-formed, but a small-order key
    ],
)
@pytest.mark.parametrize(
    "field",
    [
        "agent_did",
        "agent_dids",
        "gateway_receipt_signer_dids",
        "token_issuer_dids",
        "registry_publisher_dids",
    ],
)
def test_a_malformed_did_is_refused_by_field(field: str, bad: str) -> None:
    value = bad if field == "agent_did" else [bad]
    with pytest.raises(InputError, match=f"field {field}: .* is not a usable did:key"):
        Trust.from_json(OURS | {field: value})
