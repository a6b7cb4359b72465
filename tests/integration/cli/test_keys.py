"""``breakglass keys init|trust``: owner-only files, never overwritten, seeds never shown."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.keys import ROLES, key_dir
from engine.verify import Trust
from tests.integration.cli.conftest import ROLE_ARGS, Cli, assert_one_line_error

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


def test_init_with_a_bad_key_creates_nothing(cli: Cli, home: Path) -> None:
    cli("keys", "init")
    key_path(home, "agent").unlink()
    key_path(home, "gateway").unlink()
    key_path(home, "issuer").write_text("not a key")
    result = cli("keys", "init")
    assert_one_line_error(result, 2)
    assert "issuer.key is not a breakglass key" in result.err
    assert not key_path(home, "agent").exists()
    assert not key_path(home, "gateway").exists()


def home_is_a_file(home: Path) -> tuple[Path, str]:
    home.write_text("")
    return home, f"the home {home} is not a directory"


def keys_is_a_file(home: Path) -> tuple[Path, str]:
    home.mkdir()
    (home / "keys").write_text("")
    return home, f"the keys directory {home / 'keys'} is not a directory"


def home_under_a_file(home: Path) -> tuple[Path, str]:
    home.write_text("")
    return home / "sub", f"the home {home / 'sub'}: Not a directory"


@pytest.mark.parametrize("unusable", [home_is_a_file, keys_is_a_file, home_under_a_file])
def test_an_unusable_home_is_one_clear_line_and_left_alone(
    cli: Cli,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    unusable: Callable[[Path], tuple[Path, str]],
) -> None:
    root, named = unusable(home)
    monkeypatch.setenv("BREAKGLASS_HOME", str(root))
    before = sorted(home.parent.rglob("*"))
    for command in (("keys", "init"), ("keys", "trust"), (*ROLE_ARGS, "--job", "job-1")):
        result = cli(*command)
        assert_one_line_error(result, 2)
        assert named in result.err
    assert sorted(home.parent.rglob("*")) == before


def test_a_key_path_that_is_a_directory_is_named_so(cli: Cli, home: Path) -> None:
    cli("keys", "init")
    key_path(home, "publisher").unlink()
    key_path(home, "publisher").mkdir()
    for command in ("trust", "init"):
        result = cli("keys", command)
        assert_one_line_error(result, 2)
        assert "publisher.key is not a regular file" in result.err
        assert "chmod" not in result.err


def test_init_makes_a_new_home_owner_only(cli: Cli, home: Path) -> None:
    old = os.umask(0o022)  # the usual umask: mkdir alone would leave the home 0755
    try:
        assert cli("keys", "init").code == 0
    finally:
        os.umask(old)
    assert mode(home) == 0o700
