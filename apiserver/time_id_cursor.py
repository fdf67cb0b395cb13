"""Keyset cursors for lists ordered by ``(stored time, integer id)`` descending.

``/api/audit`` and ``/api/obs_events`` break timestamp ties on an INTEGER
PRIMARY KEY, so their cursor holds ``[time text, id]`` (``encode_cursor``),
unlike :mod:`apiserver.keyset`, whose keys are two texts. The cursor parameter
declares :data:`CURSOR_PATTERN`, which matches exactly the cursors this module
writes, so the OpenAPI document never calls a cursor valid that the endpoint
would refuse. With a ``(time)`` index, whose entries SQLite orders by
``(time, rowid)``, the condition of :func:`after` is an index range.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, tuple_

from .keyset import NEXT_CURSOR
from .params import ParamError, encode_cursor

TimeIdKey = tuple[str, int]

MAX_ID = 10**18 - 1  # ids of at most 18 digits: what CURSOR_PATTERN spells out
_STORED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00")
_EXPECTED = "the X-Next-Cursor value of a previous page of this list"


def cursor_key(values: list[Any] | None, name: str = "cursor") -> TimeIdKey | None:
    """The ``(time, id)`` key a decoded cursor holds, or None without one.

    Raises ParamError for a cursor of another shape (another list's, or made up).
    """
    if values is None:
        return None
    if (
        len(values) != 2
        or not isinstance(values[0], str)
        or _STORED_TIME.fullmatch(values[0]) is None
        or not isinstance(values[1], int)
        or not 0 <= values[1] <= MAX_ID
    ):
        raise ParamError(name, _EXPECTED)
    return values[0], values[1]


def after(time_column: ColumnElement[Any], id_column: ColumnElement[Any], key: TimeIdKey) -> Any:
    """Rows strictly after ``key`` in ``time DESC, id DESC`` order.

    One row-value comparison: SQLite plans it as a range on the time index (the
    equivalent OR of two comparisons is not planned as a range).
    """
    return tuple_(time_column, id_column) < tuple_(*key)


def next_cursor_headers(key: TimeIdKey | None) -> dict[str, str]:
    """The ``X-Next-Cursor`` header continuing after ``key``; none for the last page."""
    return {} if key is None else {NEXT_CURSOR: encode_cursor([key[0], key[1]])}


# ----------------------------------------------------------------------------- pattern
#
# The cursor is unpadded URL-safe base64 of ``["<stored time>",<id>]``. Base64
# maps each 3 bytes to 4 characters, so the exact language is built group by
# group: every byte string a group can hold is encoded and the encodings are
# folded into a trie, rendered as nested character classes.

_DIGITS = frozenset(b"0123456789")
_NONZERO = frozenset(b"123456789")


def _byte_sets(template: str) -> list[frozenset[int]]:
    """``D`` stands for any digit; every other character for itself."""
    return [_DIGITS if ch == "D" else frozenset(ch.encode()) for ch in template]


def _char_class(chars: set[str]) -> str:
    """A class of base64 characters; only "-" needs escaping among them."""

    def lit(code: int) -> str:
        return r"\-" if code == ord("-") else chr(code)

    codes = sorted(ord(c) for c in chars)
    if len(codes) == 1:
        return chr(codes[0]) if codes[0] != ord("-") else r"[\-]"
    parts: list[str] = []
    for _, run in itertools.groupby(enumerate(codes), key=lambda p: p[1] - p[0]):
        run_codes = [c for _, c in run]
        if len(run_codes) > 2:
            parts.append(f"{lit(run_codes[0])}-{lit(run_codes[-1])}")
        else:
            parts.extend(lit(c) for c in run_codes)
    return "[" + "".join(parts) + "]"


def _render(trie: dict[str, Any]) -> str:
    """A regex matching exactly the paths of ``trie`` (leaves are empty dicts)."""
    by_rest: dict[str, set[str]] = {}
    for ch, child in trie.items():
        by_rest.setdefault(_render(child) if child else "", set()).add(ch)
    alternatives = [_char_class(chars) + rest for rest, chars in sorted(by_rest.items())]
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


def _group(sets: Sequence[frozenset[int]]) -> str:
    """Exactly the unpadded base64 encodings of one group of 1 to 3 bytes."""
    assert 1 <= len(sets) <= 3
    trie: dict[str, Any] = {}
    for combo in itertools.product(*(sorted(s) for s in sets)):
        node = trie
        for ch in base64.urlsafe_b64encode(bytes(combo)).decode().rstrip("="):
            node = node.setdefault(ch, {})
    return _render(trie)


def _groups(sets: Sequence[frozenset[int]]) -> str:
    return "".join(_group(sets[i : i + 3]) for i in range(0, len(sets), 3))


def _pattern() -> str:
    prefix = _byte_sets('["DDDD-DD-DDTDD:DD:DD.DDDDDD+00:00",')
    assert len(prefix) % 3 == 0  # so the id starts a base64 group of its own
    digit, nonzero, close = frozenset(_DIGITS), frozenset(_NONZERO), frozenset(b"]")
    three = _group([digit] * 3)
    # The id has 1 to 18 digits, no leading zero (besides "0" itself), then "]".
    # After a first group of three digits, r = 0..15 more digits follow: 3k + j
    # with a last group "]", "D]" or "DD]" for j = 0, 1, 2.
    longer = (
        _group([nonzero, digit, digit])
        + f"(?:(?:{three}){{0,5}}{_group([close])}"
        + f"|(?:{three}){{0,4}}(?:{_group([digit, close])}|{_group([digit, digit, close])}))"
    )
    tail = f"(?:{_group([digit, close])}|{_group([nonzero, digit, close])}|{longer})"
    return _groups(prefix) + tail


CURSOR_PATTERN = _pattern()
