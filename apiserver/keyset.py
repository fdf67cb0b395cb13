"""Keyset (cursor) pagination over a descending ``(time, id)`` sort key.

A page that may have a successor carries the sort key of the last row served in
the ``X-Next-Cursor`` response header; the client passes it back as ``cursor``
and gets the rows strictly after that key. Unlike OFFSET, the cost of a page
does not grow with its depth: the condition is one row-value comparison, which
SQLite turns into a range on a ``(time DESC, id DESC)`` index. (The equivalent
``t < ? OR (t = ? AND id < ?)`` is planned as a MULTI-INDEX OR plus a sort of
everything before the key, so it must not be used.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, tuple_

from .endpoint import CompactJSON
from .params import ParamError, encode_cursor

NEXT_CURSOR = "X-Next-Cursor"
NEXT_CURSOR_HELP = (
    "Present when more rows may follow: pass its value as `cursor` to get the next page. "
    "Absent on the last page."
)
CURSOR_HELP = (
    "Continue after the last row of a previous page: the value of the X-Next-Cursor header "
    "that page was served with. Combine it with the same filters."
)

Key = tuple[str, str]


def cursor_key(values: list[Any] | None, name: str = "cursor") -> Key | None:
    """The ``(time, id)`` key a decoded cursor holds, or None without a cursor.

    Raises ParamError for a cursor of another shape (another endpoint's, or made up).
    """
    if values is None:
        return None
    if len(values) != 2 or not all(isinstance(v, str) for v in values):
        raise ParamError(name, "a cursor from this list's X-Next-Cursor header")
    return values[0], values[1]


def after(columns: Sequence[ColumnElement[Any]], key: Key) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in descending ``columns`` order."""
    return tuple_(*columns) < tuple_(*key)


def page_response(rows: list[Any], next_key: Key | None) -> Any:
    """``rows`` as JSON, with ``X-Next-Cursor`` when ``next_key`` is set."""
    if next_key is None:
        return rows
    return CompactJSON(rows, headers={NEXT_CURSOR: encode_cursor(list(next_key))})
