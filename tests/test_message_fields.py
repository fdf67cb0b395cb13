"""Typed message-field access: strict types, and every error names the field."""

from __future__ import annotations

import json

import pytest

from projectord.projectors import message_fields as f
from projectord.projectors.contract import Rejected

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def rejected(fn, body, key, *args, **kwargs) -> str:
    """Call ``fn(body, key, ...)``; it must raise Rejected naming ``key``. Return the message."""
    with pytest.raises(Rejected) as info:
        fn(body, key, *args, **kwargs)
    message = str(info.value)
    assert f"'{key}'" in message, message
    return message


# --- every validator names the field -----------------------------------------------------

READERS_WITH_A_BAD_VALUE = [
    (f.req_str, 5),
    (f.req_str, None),
    (f.opt_str, 5),
    (f.opt_str, ["a"]),
    (f.req_int, "5"),
    (f.req_int, None),
    (f.opt_int, "5"),
    (f.req_num, "1.5"),
    (f.req_num, None),
    (f.opt_num, "1.5"),
    (f.opt_bool, "true"),
    (f.opt_bool, 1),
    (f.req_ts, "yesterday"),
    (f.req_ts, None),
    (f.req_ts, 1_779_278_400),
    (f.opt_str_list, "a"),
    (f.opt_str_list, ["a", 1]),
    (f.opt_str_list, {"a": "b"}),
]


@pytest.mark.parametrize(("fn", "value"), READERS_WITH_A_BAD_VALUE)
@pytest.mark.parametrize("key", ["pc_id", "agent_rss_bytes", "odd key.name"])
def test_bad_value_names_the_field(fn, value, key):
    rejected(fn, {key: value, "other": 1}, key)


@pytest.mark.parametrize("fn", [f.req_str, f.req_int, f.req_num, f.req_ts])
def test_missing_required_field_names_it(fn):
    message = rejected(fn, {"other": "x"}, "exit_code")
    assert "missing" in message


@pytest.mark.parametrize("fn", [f.opt_str, f.opt_int, f.opt_num, f.opt_bool, f.opt_str_list])
def test_optional_fields_absent_or_null_are_none(fn):
    assert fn({}, "k") is None
    assert fn({"k": None}, "k") is None


# --- strings -----------------------------------------------------------------------------


def test_strings():
    assert f.req_str({"k": ""}, "k") == ""
    assert f.req_str({"k": "x"}, "k", non_empty=True) == "x"
    assert f.opt_str({"k": ""}, "k") == ""
    assert "empty" in rejected(f.req_str, {"k": ""}, "k", non_empty=True)
    assert "string" in rejected(f.req_str, {"k": 1}, "k")
    assert "null" in rejected(f.req_str, {"k": None}, "k")


# --- integers ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1, I64_MIN, I64_MAX, 2**40])
def test_ints_accept_integers_in_range(value):
    assert f.req_int({"k": value}, "k") == value
    assert f.opt_int({"k": value}, "k") == value
    assert type(f.req_int({"k": value}, "k")) is int


@pytest.mark.parametrize("value", [True, False])
def test_ints_reject_bool(value):
    assert "integer" in rejected(f.req_int, {"k": value}, "k")
    assert "integer" in rejected(f.opt_int, {"k": value}, "k")


@pytest.mark.parametrize("value", [3.0, 0.0, 1.5, -2.0, float("nan"), float("inf")])
def test_ints_reject_floats_even_integral_ones(value):
    assert "integer" in rejected(f.req_int, {"k": value}, "k")
    assert "integer" in rejected(f.opt_int, {"k": value}, "k")


@pytest.mark.parametrize("value", [I64_MAX + 1, I64_MIN - 1, 2**100])
def test_ints_reject_out_of_i64(value):
    message = rejected(f.req_int, {"k": value}, "k")
    assert "out of range" in message and str(value) in message
    assert "out of range" in rejected(f.opt_int, {"k": value}, "k")


def test_ints_respect_narrower_bounds():
    assert f.req_int({"k": I32_MAX}, "k", f.I32) == I32_MAX
    assert f.req_int({"k": I32_MIN}, "k", f.I32) == I32_MIN
    assert "out of range" in rejected(f.req_int, {"k": I32_MAX + 1}, "k", f.I32)
    assert "out of range" in rejected(f.opt_int, {"k": I32_MIN - 1}, "k", f.I32)
    assert f.I32 == (I32_MIN, I32_MAX)
    assert f.I64 == (I64_MIN, I64_MAX)


def test_ints_from_real_json():
    body = json.loads('{"a": 3, "b": 3.0, "c": true, "d": 9223372036854775808}')
    assert f.req_int(body, "a") == 3
    rejected(f.req_int, body, "b")
    rejected(f.req_int, body, "c")
    rejected(f.req_int, body, "d")


# --- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (3, 3.0), (1.5, 1.5), (-2.25, -2.25)])
def test_nums_accept_ints_and_floats_as_float(value, expected):
    got = f.req_num({"k": value}, "k")
    assert got == expected and type(got) is float
    assert f.opt_num({"k": value}, "k") == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nums_reject_non_finite(value):
    assert "finite" in rejected(f.req_num, {"k": value}, "k")
    assert "finite" in rejected(f.opt_num, {"k": value}, "k")


def test_nums_reject_non_finite_from_json():
    # Python's json accepts these tokens, so the reader must stop them.
    body = json.loads('{"a": NaN, "b": Infinity, "c": -Infinity}')
    for key in body:
        rejected(f.req_num, body, key)


@pytest.mark.parametrize("value", [True, False])
def test_nums_reject_bool(value):
    assert "number" in rejected(f.req_num, {"k": value}, "k")
    assert "number" in rejected(f.opt_num, {"k": value}, "k")


@pytest.mark.parametrize("value", ["1", [1], {"a": 1}])
def test_nums_reject_non_numbers(value):
    assert "number" in rejected(f.req_num, {"k": value}, "k")


# --- booleans, timestamps, string lists --------------------------------------------------


def test_bools():
    assert f.opt_bool({"k": True}, "k") is True
    assert f.opt_bool({"k": False}, "k") is False
    for value in (0, 1, "false", []):
        assert "true or false" in rejected(f.opt_bool, {"k": value}, "k")


def test_timestamps_are_normalised():
    body = {"at": "2026-05-20T21:00:00.123456789+09:00"}
    assert f.req_ts(body, "at") == "2026-05-20T12:00:00.123456+00:00"


@pytest.mark.parametrize("value", ["2026-05-20T12:00:00", "2026-05-20", "", 5, None, []])
def test_bad_timestamps_are_rejected_naming_the_field(value):
    message = rejected(f.req_ts, {"started_at": value}, "started_at")
    assert message.startswith("field 'started_at': ")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_timestamps_are_rejected_naming_the_field(value):
    rejected(f.req_ts, {"at": value}, "at")


def test_string_lists():
    assert f.opt_str_list({"k": []}, "k") == []
    assert f.opt_str_list({"k": ["a", ""]}, "k") == ["a", ""]
    for value in ("a", ["a", None], [["a"]], [1], {"a": 1}, 5, True):
        assert "array of strings" in rejected(f.opt_str_list, {"k": value}, "k")


def test_unknown_keys_are_ignored():
    body = {"pc_id": "pc1", "future_field": {"x": [1, 2]}}
    assert f.req_str(body, "pc_id") == "pc1"


# --- json_text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (["a", "b"], '["a","b"]'),
        ([], "[]"),
        ({}, "{}"),
        ({"a": 1, "b": [1, 2], "c": None}, '{"a":1,"b":[1,2],"c":null}'),
        ({"b": 1, "a": 2}, '{"b":1,"a":2}'),  # key order preserved
        ("ä漢字", '"ä漢字"'),  # not \\u-escaped
        (0, "0"),
        (1.5, "1.5"),
        (True, "true"),
        ("", '""'),
    ],
)
def test_json_text_is_compact(value, text):
    out = f.json_text(value)
    assert out == text
    assert ", " not in out and ": " not in out
    assert json.loads(out) == value


def test_json_text_none_stays_null():
    assert f.json_text(None) is None
