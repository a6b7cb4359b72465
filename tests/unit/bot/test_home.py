"""``Home.from_environ``: the two variables, and an empty one counting as unset."""

from pathlib import Path

from adapters.store import sqlite_url
from bot.home import DEFAULT_HOME, Home


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
    import pytest

    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="BREAKGLASS_DATABASE_URL_FILE: cannot read"):
        Home.from_environ({"BREAKGLASS_DATABASE_URL_FILE": str(tmp_path / "missing")})
