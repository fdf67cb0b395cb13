"""``/api/jetstream/status``: which streams, KV buckets and object stores exist.

apiserver has no broker connection: projectord records the existence of every
probed resource in ``broker_resources`` with each status snapshot. A resource
without a row (projectord never ran) counts as absent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request

from projectord.broker_status import PROBED_KV, PROBED_OBJECT_STORES, PROBED_STREAMS
from projectord.schema import broker_resources

from ..endpoint import Endpoint, database
from ..openapi_types import array, boolean, obj, string


def present_resources(conn: Connection) -> set[tuple[str, str]]:
    """(kind, name) of every resource the newest snapshot saw on the broker."""
    query = select(broker_resources.c.kind, broker_resources.c.name).where(
        broker_resources.c.present != 0
    )
    return {(kind, name) for kind, name in conn.execute(query)}


def jetstream_status(present: set[tuple[str, str]]) -> dict[str, Any]:
    """The api.md 3.2 body: every probed name, in the documented order, with ``exists``."""

    def listed(kind: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"name": name, "exists": (kind, name) in present} for name in names]

    return {
        "streams": listed("stream", PROBED_STREAMS),
        "kv_buckets": listed("kv", PROBED_KV),
        "object_stores": listed("object_store", PROBED_OBJECT_STORES),
    }


async def status(request: Request, args: dict[str, Any]) -> Any:
    return jetstream_status(await database(request).run(present_resources))


_RESOURCES = array(obj(name=string(), exists=boolean()))

ENDPOINTS = [
    Endpoint(
        "/api/jetstream/status",
        status,
        "Existence of every stream, KV bucket and object store the backend relies on,"
        " as of projectord's latest broker snapshot.",
        obj(streams=_RESOURCES, kv_buckets=_RESOURCES, object_stores=_RESOURCES),
    )
]
