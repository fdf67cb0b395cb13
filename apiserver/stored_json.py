"""JSON text stored in the database (payload columns), decoded for a response.

Only what a response can carry back out is accepted: strict JSON (no ``NaN`` or
``Infinity``, no number that overflows a float) whose strings are valid
Unicode. Anything else is reported as undecodable instead of failing the
request when the response is encoded.
"""

from __future__ import annotations

from typing import Any

import orjson


class Undecodable(ValueError):
    """The stored text is not JSON a response can carry."""


def decode_stored(stored: str | bytes | None) -> Any:
    """The JSON value of ``stored``; NULL is JSON null. Raises Undecodable."""
    if stored is None:
        return None
    try:
        # orjson is strict in exactly the ways a response needs: it refuses NaN and
        # Infinity, numbers that overflow a float, lone surrogates and invalid UTF-8,
        # and it decodes the payload-heavy pages (obs events) several times faster.
        return orjson.loads(stored)
    except (orjson.JSONDecodeError, UnicodeError) as exc:
        raise Undecodable(str(exc)[:200]) from None


def decode_or_none(stored: str | bytes | None) -> Any:
    """The JSON value of ``stored``, or None when it is undecodable."""
    try:
        return decode_stored(stored)
    except Undecodable:
        return None
