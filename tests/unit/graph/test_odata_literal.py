"""OData string literals: quotes doubled, so a value can never end the literal early."""

from __future__ import annotations

import pytest

from adapters.graph.resolve import odata_string
from adapters.graph.simulated.odata import parse_filter


@pytest.mark.parametrize(
    "value", ["plain", "O'Brien", "x' or 1 eq 1 or displayName eq 'y", "''", "'", ""]
)
def test_a_literal_reads_back_as_exactly_one_value(value: str) -> None:
    text = f"displayName eq {odata_string(value)}"
    assert parse_filter(text, ("displayName",)) == {"displayName": value}


def test_quotes_are_doubled() -> None:
    assert odata_string("O'Brien") == "'O''Brien'"
