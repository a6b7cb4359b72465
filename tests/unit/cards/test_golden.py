"""Every view rendered both ways equals its golden file (regenerate: see regen_golden)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cards.regen_golden import GOLDEN, PLATFORMS, expected

EXPECTED = expected()
HINT = "card output drifted; run `.venv/bin/python -m tests.unit.cards.regen_golden` and review"


@pytest.mark.parametrize("path", sorted(EXPECTED), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rendered_card_matches_golden(path: Path) -> None:
    assert path.is_file(), f"missing golden file {path.name}: {HINT}"
    assert path.read_text(encoding="utf-8") == EXPECTED[path], HINT


def test_no_orphan_golden_files() -> None:
    present = {p for platform in PLATFORMS for p in (GOLDEN / platform).glob("*.json")}
    assert present == set(EXPECTED), HINT


def test_every_moment_is_rendered_for_both_platforms() -> None:
    teams, slack = (set(PLATFORMS[p]) for p in ("teams", "slack"))
    moments = {"request_form", "approval_result_approved", "status_active", "receipt"}
    moments |= {"kill_result", "kill_result_failed", "audit_summary", "approval_simulated_ca"}
    assert moments <= teams & slack
    assert {"approval_approver", "approval_read_only"} <= teams
