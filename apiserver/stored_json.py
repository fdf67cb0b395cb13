"""JSON text stored in the database (payload columns), decoded for a response.

Only what a response can carry back out is accepted: strict JSON (no ``NaN`` or
``Infinity``, no number that overflows a float) whose strings are valid
Unicode. Anything else is reported as undecodable instead of failing the
request when the response is encoded.
"""

from __future__ import annotations

import json
import math
from typing import Any


class Undecodable(ValueError):
    """The stored text is not JSON a response can carry."""


def _no_constant(name: str) -> Any:
    raise Undecodable(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Undecodable(f"number {text[:40]} overflows")
    return value


# One decoder for every call: json.loads with options builds a new one each time.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def decode_stored(stored: str | bytes | None) -> Any:
    """The JSON value of ``stored``; NULL is JSON null. Raises Undecodable."""
    if stored is None:
        return None
    try:
        text = stored if isinstance(stored, str) else stored.decode("utf-8")
        value = _DECODER.decode(text)
        if "\\u" in text:
            # An escaped lone surrogate decodes but cannot be written as UTF-8.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, Unicode errors
        raise Undecodable(str(exc)[:200]) from None
    return value


def decode_or_none(stored: str | bytes | None) -> Any:
    """The JSON value of ``stored``, or None when it is undecodable."""
    try:
        return decode_stored(stored)
    except Undecodable:
        return None
