"""Hooks for the whole suite: without ../shared, its tests are skipped under ONE line."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.support.shared import fold_missing_shared


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    outcome = yield
    fold_missing_shared(outcome.get_result())
