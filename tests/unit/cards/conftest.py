from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.shared import require_shared, shared_dir

REPO = Path(__file__).resolve().parents[3]
SCHEMA = Path("adaptivecards") / "adaptive-card-1.5.json"


def shared_file(relative: Path) -> Path | None:
    """A file of ``shared/`` (found as tests.support.shared finds it)."""
    shared = shared_dir()
    if shared is not None and (shared / relative).is_file():
        return shared / relative
    return None


@pytest.fixture(scope="session")
def adaptive_schema() -> dict[str, Any]:
    require_shared()  # no shared/ at all: the one summary line every such test shares
    path = shared_file(SCHEMA)
    if path is None:
        # -ra in addopts prints this reason in the run's summary.
        pytest.skip(f"NO ADAPTIVE CARD SCHEMA CHECK: shared/{SCHEMA} not found near {REPO}")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded
