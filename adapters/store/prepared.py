"""The statements every receipt runs, compiled once per database and run as driver SQL.

A receipt's write is two statements (the job's compare-and-set and its chain insert), and
SQLAlchemy's work per execution of a compiled Core statement (processing each parameter,
an execution context, a result) costs more than both statements on SQLite. Here each is
compiled once per dialect and run with ``Connection.exec_driver_sql``: inside the same
transaction, with its driver errors wrapped as any statement's (``IntegrityError`` ...),
its typed parameters (the UTC timestamp) processed by their column types as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.sql.dml import UpdateBase

Params = Mapping[str, Any]


class Prepared:
    """``statement`` compiled for ``dialect``; its parameters are given by bind name."""

    def __init__(self, statement: UpdateBase, dialect: Dialect) -> None:
        self._compiled = statement.compile(dialect=dialect)
        self._sql = self._compiled.string
        self._order = self._compiled.positiontup if dialect.positional else None
        binds = self._compiled.bind_names.items()  # each parameter and its name in the SQL
        # Values the statement carries itself (the 1 of ``version + 1``).
        self._fixed = {name: b.effective_value for b, name in binds if not b.required}
        processors = {  # as SQLAlchemy runs them: the dialect's form of each type
            name: b.type.dialect_impl(dialect).bind_processor(dialect) for b, name in binds
        }
        self._processors: dict[str, Callable[[Any], Any]] = {
            name: process for name, process in processors.items() if process is not None
        }

    def run(self, conn: Connection, params: Params | Sequence[Params]) -> CursorResult[Any]:
        """Execute with one set of parameters, or with each of several (executemany)."""
        if isinstance(params, Mapping):
            return conn.exec_driver_sql(self._sql, self._driver_params(params))
        return conn.exec_driver_sql(self._sql, [self._driver_params(p) for p in params])

    def _driver_params(self, params: Params) -> Any:
        values = {**self._fixed, **params}
        for name, process in self._processors.items():
            values[name] = process(values[name])
        if self._order is None:
            return values
        return tuple(values[name] for name in self._order)


@functools.lru_cache(maxsize=32)
def prepared(statement: UpdateBase, dialect: Dialect) -> Prepared:
    """``statement`` compiled for ``dialect``, once (an engine keeps its dialect)."""
    return Prepared(statement, dialect)
