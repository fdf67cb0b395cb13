"""``/api/projector/gaps``: stream ranges that aged out before a projector applied them.

projectord records a gap when, at start-up, a stream no longer holds the message
after a projector's checkpoint (a long outage, or a backup older than the
stream's retention): those messages are lost to the projection. Gaps are rare,
so the list is one page, newest first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request

from projectord.schema import projector_gaps

from ..endpoint import Endpoint, database
from ..openapi_types import array, integer, obj, string, timestamp
from ..params import Param
from ..wire_time import api_time

_g = projector_gaps.c


def gap_rows(conn: Connection, projector: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` gaps, newest first (id descending), of one projector or all."""
    query = select(projector_gaps).order_by(_g.id.desc()).limit(limit)
    if projector is not None:
        query = query.where(_g.projector == projector)
    return [
        {
            "id": row.id,
            "projector": row.projector,
            "stream": row.stream,
            "from_seq": row.from_seq,
            "to_seq": row.to_seq,
            "missing": row.missing,
            "detected_at": api_time(row.detected_at),
        }
        for row in conn.execute(query)
    ]


async def list_gaps(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(gap_rows, args["projector"], args["limit"])


ENDPOINTS = [
    Endpoint(
        "/api/projector/gaps",
        list_gaps,
        "Stream sequence ranges [from_seq, to_seq] that aged out before they were "
        "applied (lost to the projection), newest first.",
        array(
            obj(
                id=integer(),
                projector=string(),
                stream=string(),
                from_seq=integer(),
                to_seq=integer(),
                missing=integer(),
                detected_at=timestamp(),
            )
        ),
        params=(
            Param("projector", "string", "Only this projector's gaps (exact name)."),
            Param("limit", "integer", "Rows at most.", default=100, minimum=1, maximum=1000),
        ),
    ),
]
