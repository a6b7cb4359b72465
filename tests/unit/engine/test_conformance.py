"""Our verifier agrees with the reference verdict for every proof_bundle vector we hold."""

from typing import Any

import pytest

from engine.canonical import strict_loads
from engine.verify import Trust, verify_bundle
from tests.support.shared import require_shared, shared_dir


def _vectors() -> list[tuple[str, str, Any]]:
    """The vectors, or none without ../shared (collection must never fail on that)."""
    shared = shared_dir()
    if shared is None:
        return []
    root = shared / "clawsig" / "conformance"
    manifest = strict_loads((root / "manifest.v1.json").read_bytes())
    out = []
    for vector in manifest["vectors"]:
        file_name = vector["path"].rsplit("/", 1)[-1]
        if vector["kind"] == "proof_bundle" and (root / file_name).exists():
            out.append((vector["name"], file_name, vector["expected"]))
    return out


def _trust() -> Trust:
    root = require_shared() / "clawsig" / "conformance"
    return Trust.from_json(strict_loads((root / "allowlists.v1.json").read_bytes()))


@pytest.mark.parametrize(("name", "file_name", "expected"), _vectors() or [("none", "", {})])
def test_verdict_matches_the_reference(name: str, file_name: str, expected: Any) -> None:
    root = require_shared() / "clawsig" / "conformance"
    assert file_name, "no proof_bundle vectors found"
    report = verify_bundle(strict_loads((root / file_name).read_bytes()), _trust())
    assert report.profile == "core"
    assert report.valid is expected["valid"], (name, report.reasons)
    if not expected["valid"]:
        family = expected["reason_code"]
        assert report.reason_codes[0] in family, (name, report.reason_codes, family)


def test_all_sixteen_local_vectors_are_exercised() -> None:
    require_shared()
    assert len(_vectors()) == 16
