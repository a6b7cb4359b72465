import json
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.canonical import insertion_order_json, jcs, strict_loads
from engine.encoding import b64u_decode, b64u_encode, is_hash_b64u, sha256_b64u
from engine.errors import InputError, StrictJsonError, TooLarge


def test_b64u_round_trip_without_padding() -> None:
    for data in (b"", b"f", b"fo", b"foo", bytes(range(256))):
        text = b64u_encode(data)
        assert "=" not in text
        assert b64u_decode(text) == data


@pytest.mark.parametrize("bad", ["Zg==", "Zm9v+", "Zm9v/", "Z", "Zh", "a b"])
def test_b64u_refuses_padding_other_alphabets_and_stray_bits(bad: str) -> None:
    with pytest.raises(InputError):
        b64u_decode(bad)


def test_sha256_b64u_is_43_chars() -> None:
    digest = sha256_b64u(b"abc")
    assert digest == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
    assert is_hash_b64u(digest)


def test_jcs_sorts_keys_and_matches_insertion_order_for_sorted_payloads() -> None:
    value = {"b": [1, {"d": "é", "c": None}], "a": True}
    assert jcs(value) == b'{"a":true,"b":[1,{"c":null,"d":"\xc3\xa9"}]}'
    ordered = {"a": True, "b": [1, {"c": None, "d": "é"}]}
    assert insertion_order_json(ordered) == jcs(value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a":1,"a":2}', "duplicate"),
        ('{"a":NaN}', "NaN"),
        ('{"a":Infinity}', "Infinity"),
        ('{"a":-Infinity}', "Infinity"),
        ('{"a":"\\ud800"}', "surrogate"),
        ('{"\\udfff":1}', "surrogate"),
        ('{"a":9007199254740992}', "beyond"),
        ('{"a":-9007199254740992}', "beyond"),
        ('{"a":1.5}', "float"),
        ('{"a":', "not JSON"),
    ],
)
def test_strict_loads_refuses_ambiguous_json(text: str, why: str) -> None:
    with pytest.raises(StrictJsonError, match=why):
        strict_loads(text)


def test_strict_loads_refuses_invalid_utf8_and_oversize() -> None:
    with pytest.raises(StrictJsonError, match="UTF-8"):
        strict_loads(b'{"a":"\xff"}')
    with pytest.raises(TooLarge):
        strict_loads(b"[" + b"1," * 40_000 + b"1]", max_bytes=64 * 1024)


@pytest.mark.parametrize("sign", ["", "-"])
def test_an_integer_beyond_pythons_digit_limit_is_strict_json_error(sign: str) -> None:
    # int() refuses more than 4300 digits with a ValueError: it must not escape the parser.
    with pytest.raises(StrictJsonError, match="integer of 4301 digits is too large"):
        strict_loads('{"x":' + sign + "9" * 4301 + "}")


def test_an_oversize_body_is_described_by_the_limit_not_by_what_was_read() -> None:
    # Readers stop at limit + 1 bytes: that count would misstate the file's size.
    with pytest.raises(TooLarge) as caught:
        strict_loads(b" " * (1024 * 1024 + 1), max_bytes=1024 * 1024)
    assert str(caught.value) == "JSON body is larger than 1 MiB"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": "abc', "not JSON: Unterminated string starting at character 6"),
        ('["\x01"]', "not JSON: Invalid control character at character 2"),
        ('{"a":', "not JSON: Expecting value at character 5"),
    ],
)
def test_not_json_messages_say_where_once(text: str, message: str) -> None:
    with pytest.raises(StrictJsonError) as caught:
        strict_loads(text)
    assert str(caught.value) == message


def test_strict_loads_accepts_the_largest_safe_integer() -> None:
    assert strict_loads('{"a":9007199254740991}') == {"a": 9007199254740991}


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # includes control characters, non-BMP characters and lone surrogates
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def _reference(value: object) -> bytes | str:
    """The reference implementation's bytes, or the name of what it raised."""
    try:
        return rfc8785.dumps(value)  # type: ignore[arg-type]
    except Exception as exc:
        return type(exc).__name__


def _ours(value: object) -> bytes | str:
    try:
        return jcs(value)
    except StrictJsonError as exc:  # our wrapper of rfc8785.CanonicalizationError
        return type(exc.__cause__).__name__
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=400, deadline=None)
@given(_JSON_VALUES)
def test_jcs_fast_path_writes_exactly_the_reference_bytes(value: object) -> None:
    assert _ours(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code point order
        {"k": '\x00\x1f\x7f\u2028"\\\b\f\n\r\t'},
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        {"n": 2**53},
        {"s": "\ud800"},
        {1: "int key"},
        [1.0, 1e21, -0.0],
    ],
)
def test_jcs_agrees_with_the_reference_on_edge_cases(value: object) -> None:
    assert _ours(value) == _reference(value)


# insertion_order_json: orjson where it writes what the json module writes (ADR 0017).
_STRINGIFY = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json_module(value: object) -> bytes | str:
    """What insertion_order_json wrote before orjson: the json module's bytes, or the name
    of what it raised."""
    try:
        return _STRINGIFY.encode(value).encode("utf-8")
    except Exception as exc:
        return type(exc).__name__


def _insertion_order(value: object) -> bytes | str:
    try:
        return insertion_order_json(value)
    except Exception as exc:
        return type(exc).__name__


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_float(v) for v in value)
    return False


@settings(max_examples=400, deadline=None)
@given(_JSON_VALUES)
def test_insertion_order_json_writes_what_the_json_module_writes(value: object) -> None:
    ours = _insertion_order(value)
    if not _has_float(value) or isinstance(ours, str):
        assert ours == _json_module(value)
    else:  # a float's exponent is written 1e-7, not 1e-07: the same number either way
        assert json.loads(ours) == json.loads(_json_module(value))


def test_every_character_is_written_as_the_json_module_and_rfc8785_write_it() -> None:
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for start in range(0, len(everything), 4096):
        text = everything[start : start + 4096]
        value = {"k": [text, {"n": 1}]}
        assert insertion_order_json(value) == _json_module(value)
        assert jcs(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "refused_with"),
    [
        (float("nan"), ValueError),  # orjson would write null
        ({"x": [float("inf")]}, ValueError),
        ({"s": "\ud800"}, UnicodeEncodeError),
        ({"at": datetime(2026, 11, 30, tzinfo=UTC)}, TypeError),  # orjson would write it
        ({"v": MappingProxyType({})}, TypeError),
    ],
)
def test_insertion_order_json_refuses_what_the_json_module_refuses(
    value: object, refused_with: type[Exception]
) -> None:
    with pytest.raises(refused_with):
        insertion_order_json(value)


class _Kind(StrEnum):
    READ = "read"


@pytest.mark.parametrize(
    "value",
    [
        {"kind": _Kind.READ},  # a str subclass: written as its text, as json writes it
        {"n": 2**64 + 1},  # past orjson's 64 bits
        {1: "int key", None: "null key"},  # keys json turns into text
        {"s": None, "t": "null"},
    ],
)
def test_insertion_order_json_takes_the_json_path_where_orjson_differs(value: object) -> None:
    assert insertion_order_json(value) == _json_module(value)
