"""``breakglass report BUNDLE --trust FILE -o report.html``: one self-contained page, the
verdict first, every bundle text escaped; parsed back with html.parser."""

from __future__ import annotations

import copy
import json
import resource
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.commands.html_report import render
from engine.verify import Trust, verify_bundle
from engine.verify.reasons import meaning
from tests.corpus.generate import HERE as CORPUS
from tests.corpus.generate import agent_sim, resign
from tests.integration.cli.conftest import Cli, assert_one_line_error

TRUST = str(CORPUS / "trust.json")


class Page(HTMLParser):
    """The page's structure: tags in order, section ids, text per section, every URL-ish
    attribute, and the cells of each table by its class."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.text: dict[str, str] = {}
        self.urls: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._section = ""
        self._table = ""
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset")]
        if tag == "section":
            self._section = found.get("id") or ""
            self.sections.append(self._section)
        if tag == "table":
            self._table = found.get("class") or ""
            self.rows.setdefault(self._table, [])
        if tag == "tr":
            self.rows[self._table].append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text[self._section] = self.text.get(self._section, "") + data
        if self._cell is not None:
            self._cell.append(data)


def report(cli: Cli, tmp_path: Path, bundle: str | Path) -> tuple[int, Page, str]:
    out = tmp_path / "report.html"
    result = cli("report", str(bundle), "--trust", TRUST, "-o", str(out))
    text = out.read_text(encoding="utf-8")
    return result.code, Page(text), text


def assert_self_contained(page: Page, text: str) -> None:
    assert "script" not in page.tags
    assert "link" not in page.tags
    assert "img" not in page.tags
    assert page.urls == []
    assert "http://" not in text
    assert "https://" not in text
    assert "default-src 'none'" in text  # and the browser is told so


def test_a_good_agent_bundle_reads_from_verdict_to_rollback(cli: Cli, tmp_path: Path) -> None:
    code, page, text = report(cli, tmp_path, CORPUS / "good_agent.bundle.json")
    assert code == 0
    assert page.sections == ["verdict", "timeline", "policy", "approvals", "calls", "rollback"]
    assert page.text["verdict"].strip().startswith("VALID")
    assert_self_contained(page, text)
    who = {row[1] for row in page.rows["timeline"][1:]}
    assert {"u-alice", "u-bob", "u-carol", "agent"} <= who
    assert "u-alice asked for entra-role for 30 minutes" in page.text["policy"]
    assert "Allowed model route: scripted:breakglass-agent." in page.text["policy"]
    assert [r[2] for r in page.rows["approvals"][1:]] == ["approved", "approved"]
    models = page.rows["models"][1:]
    assert len(models) == 2
    assert all(r[2] == "allowed" for r in models)
    assert (
        len(page.rows["tools"][1:]) == 6
    )  # write, read, removal, read, end revocation, activity read
    assert (
        "What the privilege was used for: during the window u-alice did: Reset"
        in (page.text["rollback"])
    )
    receipted = [r[2] for r in page.rows["rollback"][1:]]
    assert len(receipted) == 4  # the last: sessions revoked at the window's end
    assert all(r.startswith("success at ") for r in receipted)


def test_a_tampered_bundle_shows_the_verdict_and_what_the_codes_mean(
    cli: Cli, tmp_path: Path
) -> None:
    code, page, text = report(cli, tmp_path, CORPUS / "self_approval.bundle.json")
    assert code == 1
    assert page.sections[0] == "verdict"
    assert page.text["verdict"].strip().startswith("INVALID")
    reasons = {row[0]: row[1] for row in page.rows["reasons"][1:]}
    assert reasons["BREAKGLASS_SELF_APPROVAL"] == meaning("BREAKGLASS_SELF_APPROVAL")
    assert_self_contained(page, text)


def test_a_bundle_edited_after_signing_shows_nothing_it_claims(cli: Cli, tmp_path: Path) -> None:
    code, page, _ = report(cli, tmp_path, CORPUS / "unsigned_edit.bundle.json")
    assert code == 1
    assert page.sections == ["verdict", "contents"]
    assert "HASH_MISMATCH" in page.text["verdict"]
    assert "nobody" not in "".join(page.text.values())  # the edited run metadata


def test_bundle_text_is_escaped_never_markup(cli: Cli, tmp_path: Path) -> None:
    sim = agent_sim()
    bundle = copy.deepcopy(sim.bundle())
    hostile = '<script>alert(1)</script><img src="http://x/y">'
    for approval in bundle["payload"]["human_approval_receipts"]:
        approval["approver_subject"] = hostile  # signed by the bundle key: a hostile producer
    signed = resign(bundle, sim.keys.agent)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(signed))
    assert not verify_bundle(signed, Trust.from_json(json.loads(Path(TRUST).read_text()))).valid
    _, page, text = report(cli, tmp_path, path)
    assert "script" not in page.tags
    assert page.urls == []
    assert "&lt;script&gt;" in text
    assert hostile in page.text["approvals"]  # shown as text, exactly


def test_hidden_characters_in_bundle_text_are_shown_as_markers(cli: Cli, tmp_path: Path) -> None:
    sim = agent_sim()
    bundle = copy.deepcopy(sim.bundle())
    spoofed = "\u202eINC\u0000-42\x1b[2J"  # shown reversed, cut, or a terminal escape
    for approval in bundle["payload"]["human_approval_receipts"]:
        approval["approver_subject"] = spoofed
    path = tmp_path / "spoofed.json"
    path.write_text(json.dumps(resign(bundle, sim.keys.agent)))
    _, page, text = report(cli, tmp_path, path)
    assert "[U+202E]INC[U+0000]-42[U+001B][2J" in page.text["approvals"]
    assert not any(c in text for c in "\u202e\u0000\x1b")


def test_the_report_needs_an_output_file(cli: Cli) -> None:
    assert_one_line_error(cli("report", str(CORPUS / "good.bundle.json"), "--trust", TRUST), 2)


@pytest.mark.parametrize("name", sorted(json.loads((CORPUS / "expected.json").read_text())))
def test_every_corpus_bundle_renders_with_its_verdict_first(name: str) -> None:
    bundle = json.loads((CORPUS / f"{name}.bundle.json").read_text())
    verdict = verify_bundle(bundle, Trust.from_json(json.loads(Path(TRUST).read_text())))
    page = Page(render(verdict, bundle))
    assert page.sections[0] == "verdict"
    assert page.text["verdict"].strip().startswith("VALID" if verdict.valid else "INVALID")
    for code in verdict.reason_codes:
        assert code in page.text["verdict"]


def test_with_a_reference_allowlist_the_core_contents_are_shown(cli: Cli, tmp_path: Path) -> None:
    ours = json.loads(Path(TRUST).read_text())
    allowlist = tmp_path / "allowlists.json"
    allowlist.write_text(
        json.dumps(
            {
                "agent_did": ours["agent_dids"][0],
                "gateway_receipt_signer_dids": ours["gateway_receipt_signer_dids"],
            }
        )
    )
    out = tmp_path / "core.html"
    bundle = str(CORPUS / "good_agent.bundle.json")
    assert cli("report", bundle, "--trust", str(allowlist), "-o", str(out)).code == 0
    page = Page(out.read_text(encoding="utf-8"))
    assert page.sections == ["verdict", "contents"]
    assert "core" in page.text["verdict"]
    assert ["model calls", "2"] in page.rows["counts"]


def test_report_help_names_every_exit_code(cli: Cli) -> None:
    result = cli("report", "--help")
    assert "exit 0 valid, 1 invalid, 2 unusable" in " ".join(result.out.split())
    assert "- for stdout" in " ".join(result.out.split())


def test_dash_writes_the_page_to_stdout_not_to_a_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("report", str(CORPUS / "good_agent.bundle.json"), "--trust", TRUST, "-o", "-")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("<!DOCTYPE html>")  # the page alone
    assert Page(result.out).text["verdict"].strip().startswith("VALID")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("target", ["bundle", "trust", "link to bundle", "hard link to trust"])
def test_the_report_never_overwrites_its_inputs(cli: Cli, tmp_path: Path, target: str) -> None:
    bundle = tmp_path / "bundle.json"  # copies: a failing test must not destroy the corpus
    trust = tmp_path / "trust.json"
    bundle.write_bytes((CORPUS / "good_agent.bundle.json").read_bytes())
    trust.write_bytes(Path(TRUST).read_bytes())
    (tmp_path / "link.json").symlink_to(bundle)
    (tmp_path / "hard.json").hardlink_to(trust)
    before = {path: path.read_bytes() for path in (bundle, trust)}
    out = {
        "bundle": bundle,
        "trust": tmp_path / "." / "trust.json",
        "link to bundle": tmp_path / "link.json",
        "hard link to trust": tmp_path / "hard.json",
    }[target]
    result = cli("report", str(bundle), "--trust", str(trust), "-o", str(out))
    assert_one_line_error(result, 2)
    assert "is an input file" in result.err
    assert {path: path.read_bytes() for path in (bundle, trust)} == before


def test_a_failed_write_leaves_the_old_report_whole(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("the previous report", encoding="utf-8")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the page is larger: EFBIG
    try:
        result = cli(
            "report", str(CORPUS / "good_agent.bundle.json"), "--trust", TRUST, "-o", str(out)
        )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert_one_line_error(result, 2)
    assert "cannot write" in result.err
    assert out.read_text(encoding="utf-8") == "the previous report"
    assert [p.name for p in tmp_path.iterdir() if p.name != "home"] == ["report.html"]
