"""Typed access to message fields; every failure names the field and what was expected.

Readers ignore unknown keys (the wire contract says so); they are strict about
the type of every key they use, because a wrong type stored silently is worse
than a recorded reject.
"""

from __future__ import annotations

import json
from typing import Any

from ..timestamps import TimestampError, normalize
from .contract import Rejected

_MISSING = object()
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _get(body: dict[str, Any], key: str, required: bool) -> Any:
    value = body.get(key, _MISSING)
    if value is _MISSING:
        if required:
            raise Rejected(f"field '{key}': required but missing")
        return None
    return value


def req_str(body: dict[str, Any], key: str, *, non_empty: bool = False) -> str:
    value = _get(body, key, True)
    if not isinstance(value, str):
        raise Rejected(f"field '{key}': expected a string, got {_type_name(value)}")
    if non_empty and not value:
        raise Rejected(f"field '{key}': must not be empty")
    return value


def opt_str(body: dict[str, Any], key: str) -> str | None:
    value = _get(body, key, False)
    if value is not None and not isinstance(value, str):
        raise Rejected(f"field '{key}': expected a string or null, got {_type_name(value)}")
    return value


def _int(key: str, value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # Rust serialises integers without a fraction; 3.0 is not an agent's int.
        raise Rejected(f"field '{key}': expected an integer, got {_type_name(value)}")
    if not bounds[0] <= value <= bounds[1]:
        raise Rejected(f"field '{key}': integer {value} out of range {bounds[0]}..{bounds[1]}")
    return value


def req_int(body: dict[str, Any], key: str, bounds: tuple[int, int] = I64) -> int:
    return _int(key, _get(body, key, True), bounds)


def opt_int(body: dict[str, Any], key: str, bounds: tuple[int, int] = I64) -> int | None:
    value = _get(body, key, False)
    return None if value is None else _int(key, value, bounds)


def _num(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"field '{key}': expected a number, got {_type_name(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise Rejected(f"field '{key}': expected a finite number")
    return float(value)


def req_num(body: dict[str, Any], key: str) -> float:
    return _num(key, _get(body, key, True))


def opt_num(body: dict[str, Any], key: str) -> float | None:
    value = _get(body, key, False)
    return None if value is None else _num(key, value)


def opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = _get(body, key, False)
    if value is not None and not isinstance(value, bool):
        raise Rejected(f"field '{key}': expected true or false, got {_type_name(value)}")
    return value


def req_ts(body: dict[str, Any], key: str) -> str:
    """A required RFC 3339 timestamp, returned in storage format."""
    value = _get(body, key, True)
    try:
        return normalize(value)
    except TimestampError as exc:
        raise Rejected(f"field '{key}': {exc}") from None


def opt_str_list(body: dict[str, Any], key: str) -> list[str] | None:
    value = _get(body, key, False)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Rejected(f"field '{key}': expected an array of strings, got {_type_name(value)}")
    return value


def json_text(value: Any) -> str | None:
    """Compact JSON text of an arbitrary value (None stays NULL)."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
