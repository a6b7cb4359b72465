"""The PostgreSQL fixtures of the store tests (a fresh schema per test)."""

from tests.integration.store.conftest import pg_reachable, pg_url

__all__ = ["pg_reachable", "pg_url"]
