"""The spool of a person's window-ending commands the store refused (``bot.kept_commands``)."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from bot.kept_commands import KeptCommands, spool_in
from bot.leases import default_replica_id
from engine.job import Actor
from engine.lifecycle import Done, Extend, Kill

ERIN = Actor("console:erin", "00000000-0000-0000-0000-0000000000e1", "Erin")
ALICE = Actor("slack:U123", None)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_what_is_kept_is_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "kept-commands.json"
    KeptCommands(path).save({"job-1": Kill(ERIN), "job-2": Done(ALICE)})

    assert KeptCommands(path).load() == {"job-1": Kill(ERIN), "job-2": Done(ALICE)}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_file_holds_each_commands_kind_and_actor_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "kept-commands.json"
    KeptCommands(path).save({"job-1": Kill(ERIN)})

    document = json.loads(path.read_text())
    assert document == {
        "version": 1,
        "commands": {
            "job-1": {
                "kind": "kill",
                "actor": {
                    "chat_identity": "console:erin",
                    "principal": ERIN.principal,
                    "display": "Erin",
                },
            }
        },
    }


def test_a_command_of_another_kind_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "kept-commands.json"
    KeptCommands(path).save({"job-1": Extend(ERIN, 15), "job-2": Kill(ERIN)})
    assert KeptCommands(path).load() == {"job-2": Kill(ERIN)}


def test_the_file_is_replaced_whole_and_removed_once_nothing_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "kept-commands.json"
    kept = KeptCommands(path)
    kept.save({"job-1": Kill(ERIN)})
    kept.save({"job-2": Done(ALICE)})

    assert KeptCommands(path).load() == {"job-2": Done(ALICE)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept-commands.json"]  # no temp left
    kept.save({})
    assert not path.exists()
    assert KeptCommands(path).load() == {}


def test_a_write_cut_before_its_rename_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kept-commands.json"
    kept = KeptCommands(path)
    kept.save({"job-1": Kill(ERIN)})

    def refused(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refused)
    kept.save({"job-1": Kill(ERIN), "job-2": Done(ALICE)})
    kept.save({"job-1": Kill(ERIN), "job-2": Done(ALICE), "job-3": Kill(ALICE)})

    assert KeptCommands(path).load() == {"job-1": Kill(ERIN)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept-commands.json"]
    said = errors(caplog)
    assert len(said) == 1, said  # once, not at every write
    assert "No space left on device" in said[0]
    assert str(path) in said[0]

    monkeypatch.undo()
    kept.save({"job-2": Done(ALICE)})  # written again: a later failure is said again
    assert KeptCommands(path).load() == {"job-2": Done(ALICE)}


def test_a_write_that_fails_is_said_once_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.write_text("a file where the home directory should be")
    kept = KeptCommands(home / "kept-commands.json")

    kept.save({"job-1": Kill(ERIN)})  # no exception: the caller keeps it in memory
    kept.save({"job-1": Kill(ERIN), "job-2": Kill(ALICE)})

    assert len(errors(caplog)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"version": 2, "commands": {}}',
        '{"version": 1, "commands": []}',
        '{"version": 1, "commands": {"job-1": {"kind": "grant", "actor": {}}}}',
        '{"version": 1, "commands": {"job-1": {"kind": "kill"}}}',
        '{"version": 1, "commands": {"job-1": {"kind": "kill", "actor": {"principal": "p"}}}}',
        '{"version": 1, "commands": {"job-1": {"kind": "kill", "actor": {"chat_identity": 7}}}}',
    ],
)
def test_a_malformed_file_is_one_error_and_ignored(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kept-commands.json"
    path.write_text(text)

    assert KeptCommands(path).load() == {}
    said = errors(caplog)
    assert len(said) == 1, said
    assert str(path) in said[0]
    assert "ignored" in said[0]


def test_an_unreadable_file_is_one_error_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kept-commands.json"
    path.mkdir()  # read_text fails (IsADirectoryError), as an unreadable file would
    assert KeptCommands(path).load() == {}
    assert len(errors(caplog)) == 1

    path.rmdir()
    path.write_bytes(b"\xff\xfe not utf-8")
    caplog.clear()
    assert KeptCommands(path).load() == {}
    assert len(errors(caplog)) == 1


def test_no_file_is_nothing_kept_and_nothing_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert KeptCommands(tmp_path / "kept-commands.json").load() == {}
    assert caplog.records == []


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    kept = KeptCommands(None)
    kept.save({"job-1": Kill(ERIN)})
    assert kept.load() == {}
    assert list(tmp_path.iterdir()) == []


def test_each_replica_keeps_its_own_file_under_a_shared_home(tmp_path: Path) -> None:
    assert spool_in(tmp_path, "replica-a") == tmp_path / "kept-commands-replica-a.json"
    assert spool_in(tmp_path, "eu/west 1") == tmp_path / "kept-commands-eu_west_1.json"
    assert spool_in(tmp_path) == spool_in(tmp_path, default_replica_id())  # as the leases'
