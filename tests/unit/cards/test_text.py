from __future__ import annotations

import pytest

from cards.text import (
    clean_block,
    clean_line,
    reveal_hidden,
    slack_code,
    slack_mrkdwn,
    strip_hidden,
    teams_markdown,
    truncate,
)


def test_hidden_characters_become_visible_markers() -> None:
    assert reveal_hidden("a\u202eb") == "a[U+202E]b"
    assert reveal_hidden("x" + "\u200d" * 10_000) == "x[U+200D×10000]"
    assert reveal_hidden("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert strip_hidden("ad\u200dmin\u202e") == "admin"


def test_clean_line_flattens_defangs_and_unmentions() -> None:
    text = "  see http://evil.example and www.evil.example\n\n@everyone mail a@b.example "
    assert clean_line(text, 500) == (
        "see http[:]//evil.example and www[.]evil.example \uff20everyone mail a@b.example"
    )


def test_clean_block_keeps_a_few_lines_and_drops_blank_ones() -> None:
    text = "\n".join(f"l{i}" for i in range(12)) + "\n" * 200
    assert clean_block(text, 500, max_lines=3) == "l0\nl1\nl2 l3 l4 l5 l6 l7 l8 l9 l10 l11"


def test_truncate_marks_the_cut() -> None:
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 3) == "abc"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a & b", "a &amp; b"),
        ("*bold*", "\u2217bold\u2217"),
        ("INC_4711", "INC_4711"),  # inside a word "_" formats nothing and stays copyable
        ("_it_", "\uff3fit\uff3f"),
        ("~s~", "\u223cs\u223c"),
        ("`x`", "\u02cbx\u02cb"),
        (":skull:", "\ua789skull:"),
        ("> quote", "\u203a quote"),
    ],
)
def test_slack_mrkdwn_escapes(raw: str, escaped: str) -> None:
    assert slack_mrkdwn(raw, 100) == escaped


def test_slack_escaping_never_exceeds_the_limit_or_splits_an_entity() -> None:
    out = slack_mrkdwn("&" * 1000, 3000)
    assert out == "&amp;" * 599 + "…"
    assert len(out) <= 3000


def test_slack_code_keeps_hashes_exact() -> None:
    assert slack_code("ab_-cd_", 50) == "`ab_-cd_`"
    assert slack_code("a`b<c", 50) == "`a\u02cbb&lt;c`"


def test_teams_markdown_escapes_markup() -> None:
    assert teams_markdown("[a](b) *c* # d", 100) == r"\[a\]\(b\) \*c\* \# d"
    assert teams_markdown("- item", 100) == r"\- item"


def test_huge_input_is_cleaned_from_a_bounded_prefix() -> None:
    assert clean_line("a" * 1_000_000, 10) == "aaaaaaaaa…"
    assert clean_line("\u200d" * 1_000_000, 300).startswith("[U+200D×2464]")
    assert clean_block(" " * 1_000_000, 10) == "…"
