"""Alembic environment and revisions of the store's schema (package data, not imported)."""
