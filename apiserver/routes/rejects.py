"""``/api/rejects``: the messages projectors refused (DESIGN decision 3), newest first.

Each row keeps the first bytes of the raw body. They are shown as text (invalid
UTF-8 replaced) and, when they are not valid UTF-8, also as base64 so the exact
bytes can be inspected.
"""

from __future__ import annotations

import base64
import codecs
from typing import Any

from sqlalchemy import Connection, Row, select
from starlette.requests import Request

from projectord.schema import projector_rejects

from ..endpoint import CompactJSON, Endpoint, NotFound, database
from ..openapi_types import array, boolean, integer, obj, string, timestamp
from ..params import Param, ParamError, encode_cursor
from ..wire_time import api_time

_r = projector_rejects.c
_COLUMNS = (
    _r.id,
    _r.projector,
    _r.stream,
    _r.stream_seq,
    _r.subject,
    _r.error,
    _r.payload,
    _r.payload_size,
    _r.published_at,
    _r.recorded_at,
)


def payload_text(stored: bytes, truncated: bool) -> tuple[str, str | None]:
    """(text, base64 or None): base64 only when ``stored`` is not valid UTF-8.

    A truncated prefix may end inside a multi-byte character; that cut is not
    an encoding error of the message, so it is dropped rather than flagged.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(stored, final=not truncated), None
    except UnicodeDecodeError:
        text = stored.decode("utf-8", errors="replace")
        return text, base64.b64encode(stored).decode("ascii")


def reject_row(row: Row[Any]) -> dict[str, Any]:
    """One reject as the API shows it."""
    stored = row.payload
    if isinstance(stored, str):  # a value written as TEXT by hand or an old tool
        stored = stored.encode("utf-8")
    stored = bytes(stored)
    truncated = row.payload_size > len(stored)
    text, raw = payload_text(stored, truncated)
    out: dict[str, Any] = {
        "id": row.id,
        "projector": row.projector,
        "stream": row.stream,
        "stream_seq": row.stream_seq,
        "subject": row.subject,
        "error": row.error,
        "payload": text,
        "payload_size": row.payload_size,
        "truncated": truncated,
        "published_at": api_time(row.published_at),
        "recorded_at": api_time(row.recorded_at),
    }
    if raw is not None:
        out["payload_base64"] = raw
    return out


def reject_page(
    conn: Connection, projector: str | None, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` rejects with ``id < before_id`` (if given), id descending."""
    query = select(*_COLUMNS).order_by(_r.id.desc()).limit(limit)
    if projector is not None:
        query = query.where(_r.projector == projector)
    if before_id is not None:
        query = query.where(_r.id < before_id)
    return [reject_row(row) for row in conn.execute(query)]


def reject_by_id(conn: Connection, reject_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(*_COLUMNS).where(_r.id == reject_id)).first()
    return None if row is None else reject_row(row)


# The exact texts encode_cursor([id]) produces for ids 0 to 10**18 - 1:
# unpadded URL-safe base64 of "[<digits>]". Declared as the parameter's
# pattern, so the OpenAPI document says precisely which cursors are valid (a
# property-based client then never builds a "valid" cursor that decodes to
# garbage), and every id it admits fits SQLite's integer. Derived per base64
# quantum of three bytes: '[' is 0x5B, ']' 0x5D, digits 0x30-0x39.
_DIGITS_3 = r"(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"  # "ddd"
_END_0 = r"XQ"  # "]"
_END_1 = r"(?:[MN][FVl1]|O[FV])0"  # "d]"
_END_2 = r"(?:[MN][DTjz]|O[DT])[BFJNRVZdhl]d"  # "dd]"
CURSOR_PATTERN = (
    r"Wz[BFJNRVZdhl]d"  # "[d]"
    r"|Wz[EIMQUYcgk][w-z0-5]"  # "[dd" without a leading zero, then up to 16 more digits
    rf"(?:(?:{_DIGITS_3}){{0,4}}(?:{_END_0}|{_END_1}|{_END_2})"
    rf"|(?:{_DIGITS_3}){{5}}(?:{_END_0}|{_END_1}))"
)


def _before_id(cursor: list[Any] | None) -> int | None:
    if cursor is None:
        return None
    if len(cursor) != 1 or not isinstance(cursor[0], int):
        raise ParamError("cursor", "the X-Next-Cursor value of a previous page")
    return cursor[0]


async def list_rejects(request: Request, args: dict[str, Any]) -> Any:
    limit = args["limit"]
    rows = await database(request).run(
        reject_page, args["projector"], _before_id(args["cursor"]), limit
    )
    headers = {}
    if len(rows) == limit:
        headers["X-Next-Cursor"] = encode_cursor([rows[-1]["id"]])
    return CompactJSON(rows, headers=headers)


async def get_reject(request: Request, args: dict[str, Any]) -> Any:
    row = await database(request).run(reject_by_id, args["id"])
    if row is None:
        raise NotFound(f"no reject with id {args['id']}")
    return row


_REJECT = obj(
    optional=("payload_base64",),
    id=integer(),
    projector=string(),
    stream=string(nullable=True),
    stream_seq=integer(nullable=True),
    subject=string(),
    error=string(),
    payload=string(),
    payload_base64=string(),
    payload_size=integer(),
    truncated=boolean(),
    published_at=timestamp(nullable=True),
    recorded_at=timestamp(),
)

ENDPOINTS = [
    Endpoint(
        "/api/rejects",
        list_rejects,
        "Messages the projectors refused, newest first, with the first bytes of each body.",
        array(_REJECT),
        params=(
            Param("projector", "string", "Only this projector's rejects (exact name)."),
            Param("limit", "integer", "Rows per page.", default=50, minimum=1, maximum=500),
            Param(
                "cursor",
                "cursor",
                "X-Next-Cursor of the previous page: the rows after it.",
                pattern=f"(?:{CURSOR_PATTERN})",
            ),
        ),
        headers={"X-Next-Cursor": "Cursor of the next page; present when this page is full."},
    ),
    Endpoint(
        "/api/rejects/{id}",
        get_reject,
        "One refused message.",
        _REJECT,
        params=(Param("id", "integer", "The reject's id.", where="path"),),
        statuses={404: "No reject with this id."},
    ),
]
