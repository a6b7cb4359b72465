"""``Home.from_environ``: the two variables, and an empty one counting as unset; on disk, a
home we create is owner-only, and a read-only command finds the database or says so."""

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from adapters.store import sqlite_url
from bot.home import DEFAULT_HOME, Home
from engine.errors import ConfigError


def test_defaults() -> None:
    home = Home.from_environ({})
    assert home == Home(DEFAULT_HOME, sqlite_url(DEFAULT_HOME))


def test_empty_variables_count_as_unset() -> None:
    assert Home.from_environ({"BREAKGLASS_HOME": "", "BREAKGLASS_DATABASE_URL": ""}) == Home(
        DEFAULT_HOME, sqlite_url(DEFAULT_HOME)
    )


def test_both_variables() -> None:
    url = "postgresql+psycopg://bg@db.internal/breakglass"
    home = Home.from_environ({"BREAKGLASS_HOME": "/srv/bg", "BREAKGLASS_DATABASE_URL": url})
    assert home == Home(Path("/srv/bg"), url)


def test_database_defaults_under_the_home() -> None:
    assert Home.from_environ({"BREAKGLASS_HOME": "/srv/bg"}).database_url == sqlite_url(
        Path("/srv/bg")
    )


def test_the_database_url_may_come_from_a_file(tmp_path: Path) -> None:
    url = "postgresql+psycopg://bg:pw@db.internal/breakglass"
    (tmp_path / "url").write_text(url + "\n")
    home = Home.from_environ({"BREAKGLASS_DATABASE_URL_FILE": str(tmp_path / "url")})
    assert home.database_url == url


def test_an_unreadable_database_url_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BREAKGLASS_DATABASE_URL_FILE: cannot read"):
        Home.from_environ({"BREAKGLASS_DATABASE_URL_FILE": str(tmp_path / "missing")})


# --------------------------------------------------------------------------- on disk


def test_a_new_home_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    home = Home(tmp_path / "home", sqlite_url(tmp_path / "home"))
    old = os.umask(0o277)  # mkdir(mode=0o700) alone would give 0500: no way to write in it
    try:
        home.ensure_root()
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700


def test_an_existing_home_keeps_its_mode(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir(mode=0o750)
    Home(tmp_path / "home", sqlite_url(tmp_path / "home")).ensure_root()
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o750


def test_a_home_that_cannot_be_created_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    root = tmp_path / "home"
    with pytest.raises(ConfigError, match=f"cannot create the home {root}: Permission denied"):
        Home(root, sqlite_url(root)).ensure_root()


def test_a_home_that_is_a_file_is_named(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.write_text("")
    with pytest.raises(ConfigError, match=re.escape(f"the home {root} is not a directory")):
        Home(root, sqlite_url(root)).ensure_root()


def test_a_missing_sqlite_database_is_an_error_and_not_created(tmp_path: Path) -> None:
    root = tmp_path / "home"
    missing = re.escape(f"no database at {root / 'breakglass.db'}")
    with pytest.raises(ConfigError, match=missing):
        Home(root, sqlite_url(root)).require_database()
    root.mkdir()
    with pytest.raises(ConfigError, match=missing):
        Home(root, sqlite_url(root)).require_database()
    assert list(tmp_path.rglob("*")) == [root]
    (root / "breakglass.db").write_bytes(b"")
    Home(root, sqlite_url(root)).require_database()


def test_a_server_database_is_not_looked_for_on_disk() -> None:
    Home(Path("/nowhere"), "postgresql+psycopg://bg@db.internal/breakglass").require_database()
