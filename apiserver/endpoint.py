"""One API route: its handler, parameters, response schema and whether it is public.

Route modules under :mod:`apiserver.routes` export ``ENDPOINTS``, a list of
:class:`Endpoint`. The app turns each into a Starlette route that checks auth,
parses the declared parameters and encodes the handler's result as JSON; the
OpenAPI document is generated from the same objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .params import Param, parse_params
from .readonly_db import ReadDatabase

Handler = Callable[[Request, dict[str, Any]], Awaitable[Any]]


class NotFound(Exception):
    """The path names something that does not exist; answered with a JSON 404."""


@dataclass(frozen=True)
class Endpoint:
    """A GET route (or POST for login) of the API.

    ``response`` is the JSON schema of the 200 body; ``statuses`` lists the other
    statuses the route may answer besides 400/401/503, with their meaning;
    ``headers`` the response headers it sets.
    """

    path: str
    handler: Handler
    summary: str
    response: Mapping[str, Any]
    params: tuple[Param, ...] = ()
    public: bool = False
    method: str = "GET"
    statuses: Mapping[int, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    uses_db: bool = True
    body: Mapping[str, Any] | None = None  # JSON schema of a request body


def database(request: Request) -> ReadDatabase:
    """The app's read-only database."""
    return request.app.state.db


def now(request: Request) -> datetime:
    """The app's clock (UTC); tests inject a fixed one."""
    return request.app.state.clock()


class CompactJSON(JSONResponse):
    """Compact UTF-8 JSON. A NaN or infinite float is written as null, as JSON has
    no such numbers (stored payloads never hold one: :mod:`.stored_json` refuses them)."""

    def render(self, content: Any) -> bytes:
        # orjson: about a tenth of the stdlib encoder's CPU on the hot pages.
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def handle(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint: parse parameters, call the handler, encode JSON.

    Routes that are not public answer 401 without a valid session cookie or
    service token. Errors raised here (ParamError, NotFound,
    DatabaseUnavailable) are turned into JSON by the app's exception handlers.
    """

    async def run(request: Request) -> Response:
        if not endpoint.public:
            principal = request.app.state.auth.identify(request)
            if principal is None:
                return CompactJSON({"error": "authentication required"}, status_code=401)
            request.state.principal = principal
        args = parse_params(request, endpoint.params)
        result = await endpoint.handler(request, args)
        if isinstance(result, Response):
            return result
        return CompactJSON(result)

    return run
