"""One source for what reason codes mean: the code's table, which docs/reason-codes.md
repeats word for word, and which names every code the verifier can give."""

from __future__ import annotations

import re
from pathlib import Path

from engine.verify.reasons import REASONS, meaning

ROOT = Path(__file__).resolve().parents[3]
ROW = re.compile(r"^\| `([A-Z_]+)` \| (.*) \|$")
RAISED = re.compile(r"""(?:VerificationError|fail)\(\s*"([A-Z][A-Z_]+)\"""")


def documented() -> dict[str, str]:
    text = (ROOT / "docs" / "reason-codes.md").read_text()
    return {m[1]: m[2] for line in text.splitlines() if (m := ROW.match(line))}


def test_the_docs_tables_are_the_codes_table() -> None:
    assert documented() == REASONS


def test_every_code_the_verifier_gives_has_a_meaning() -> None:
    sources = [*(ROOT / "engine").glob("*.py"), *(ROOT / "engine" / "verify").glob("*.py")]
    raised = {code for path in sources for code in RAISED.findall(path.read_text())}
    assert "BREAKGLASS_MODEL_OUTSIDE_POLICY" in raised  # the pattern does find codes
    missing = {c for c in raised if c not in REASONS and not c.startswith("TOKEN_")}
    assert missing == set()


def test_token_codes_share_a_meaning_and_unknown_codes_say_so() -> None:
    assert "scoped token" in meaning("TOKEN_EXPIRED")
    assert "no description" in meaning("SOMETHING_NEW")
