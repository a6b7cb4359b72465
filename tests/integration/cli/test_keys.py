"""``breakglass keys init|trust``: owner-only files, never overwritten, seeds never shown."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from bot.keys import ROLES, key_dir
from engine.verify import Trust
from tests.integration.cli.conftest import Cli, assert_one_line_error

DID = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]+")


def key_path(home: Path, role: str) -> Path:
    return key_dir(home) / f"{role}.key"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def seeds(home: Path) -> list[str]:
    return [json.loads(key_path(home, role).read_text())["seed_b64u"] for role in ROLES]


def test_init_creates_owner_only_keys_and_prints_dids(cli: Cli, home: Path) -> None:
    result = cli("keys", "init")
    assert result.code == 0
    assert [line.split()[0] for line in result.out.splitlines()] == list(ROLES)
    assert result.out.count("(created)") == 4
    assert mode(home / "keys") == 0o700
    for role in ROLES:
        assert mode(key_path(home, role)) == 0o600


def test_init_twice_keeps_the_same_keys(cli: Cli, home: Path) -> None:
    first = cli("keys", "init")
    before = {role: key_path(home, role).read_bytes() for role in ROLES}
    second = cli("keys", "init")
    assert second.code == 0
    assert DID.findall(second.out) == DID.findall(first.out)
    assert second.out.count("(kept)") == 4
    assert {role: key_path(home, role).read_bytes() for role in ROLES} == before


def test_init_fills_in_only_a_missing_key(cli: Cli, home: Path) -> None:
    first = DID.findall(cli("keys", "init").out)
    key_path(home, "gateway").unlink()
    again = cli("keys", "init")
    assert again.out.count("(created)") == 1
    assert DID.findall(again.out)[:3] == first[:3]
    assert DID.findall(again.out)[3] != first[3]


def test_trust_document_names_each_key(cli: Cli) -> None:
    dids = DID.findall(cli("keys", "init").out)
    result = cli("keys", "trust")
    assert result.code == 0
    doc = result.json
    assert doc["registry_publisher_dids"] == [dids[0]]
    assert doc["token_issuer_dids"] == [dids[1]]
    assert doc["agent_dids"] == [dids[2]]
    assert doc["gateway_receipt_signer_dids"] == [dids[3]]
    assert Trust.from_json(doc).declares_breakglass


def test_seeds_are_never_printed(cli: Cli, home: Path) -> None:
    outputs = [cli("keys", "init"), cli("keys", "init"), cli("keys", "trust")]
    for seed in seeds(home):
        assert all(seed not in r.out + r.err for r in outputs)


def test_no_keys_yet_is_one_clear_line(cli: Cli) -> None:
    result = cli("keys", "trust")
    assert_one_line_error(result, 2)
    assert "breakglass keys init" in result.err


def test_a_key_file_open_to_others_is_refused(cli: Cli, home: Path) -> None:
    cli("keys", "init")
    key_path(home, "issuer").chmod(0o644)
    result = cli("keys", "trust")
    assert_one_line_error(result, 2)
    assert "issuer.key" in result.err
    assert "chmod 600" in result.err


def test_a_damaged_key_file_is_refused_without_quoting_it(cli: Cli, home: Path) -> None:
    cli("keys", "init")
    path = key_path(home, "agent")
    doc = json.loads(path.read_text())
    other = json.loads(key_path(home, "issuer").read_text())
    path.write_text(json.dumps(doc | {"seed_b64u": other["seed_b64u"]}))  # seed of another DID
    result = cli("keys", "trust")
    assert_one_line_error(result, 2)
    assert other["seed_b64u"] not in result.err
    path.write_text(doc["seed_b64u"][:-3] + "!!!")  # not even JSON
    result = cli("keys", "trust")
    assert_one_line_error(result, 2)
    assert doc["seed_b64u"][:-3] not in result.err
