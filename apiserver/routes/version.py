"""``/api/version``: the backend's package version (public)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .. import __version__
from ..endpoint import Endpoint
from ..openapi_types import obj, string


async def version(request: Request, args: dict[str, Any]) -> Any:
    return {"version": __version__}


ENDPOINTS = [
    Endpoint(
        "/api/version",
        version,
        "The backend's version.",
        obj(version=string()),
        public=True,
        uses_db=False,
    )
]
