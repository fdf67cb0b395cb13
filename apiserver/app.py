"""The Starlette application: routes from every resource module, JSON errors.

Nothing here writes: the database is opened read-only (:mod:`readonly_db`) and
there is no broker connection. Every error under ``/api`` is JSON, including
unknown routes, which the original answered with the SPA's HTML.
"""

from __future__ import annotations

import importlib
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from projectord.timestamps import utc_now

from .auth.identity import Authenticator
from .auth.sessions import SessionCodec
from .auth.throttle import LoginThrottle
from .config import ApiSettings
from .dashboard import dashboard_routes
from .endpoint import CompactJSON, Endpoint, NotFound, handle
from .forwarded_client import ForwardedClient
from .openapi import openapi_document
from .params import ParamError
from .readonly_db import DatabaseUnavailable, ReadDatabase
from .request_metrics import RequestMetrics

log = structlog.get_logger("apiserver")

# One module per resource under apiserver/routes, each exporting ENDPOINTS.
RESOURCES = (
    "auth",
    "version",
    "health",
    "jetstream",
    "agents",
    "perf",
    "processes",
    "results",
    "executions",
    "audit",
    "obs_events",
    "schedules",
    "jobs",
    "projector_status",
    "rejects",
    "gaps",
)


def all_endpoints() -> list[Endpoint]:
    """Every endpoint of every resource module, in a stable order."""
    endpoints: list[Endpoint] = []
    for name in RESOURCES:
        endpoints.extend(importlib.import_module(f"apiserver.routes.{name}").ENDPOINTS)
    return endpoints


async def _param_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParamError)
    body = {"error": str(exc), "parameter": exc.name, "expected": exc.expected}
    return CompactJSON(body, status_code=400)


async def _not_found(request: Request, exc: Exception) -> Response:
    return CompactJSON({"error": str(exc) or "not found"}, status_code=404)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database_unavailable", path=request.url.path, error=str(exc))
    return CompactJSON({"error": f"database unavailable: {exc}"}, status_code=503)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/") or request.url.path == "/api":
        message = "no such API route" if exc.status_code == 404 else exc.detail
        return CompactJSON({"error": message}, status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("request_failed", path=request.url.path)
    return CompactJSON({"error": "internal error"}, status_code=500)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(
    settings: ApiSettings,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    throttle: LoginThrottle | None = None,
) -> Starlette:
    """The app for ``settings``; ``clock`` is what "now" means to every query.

    ``throttle`` is shared by the worker processes; by default the app has its own.
    """
    api = settings.api
    endpoints = all_endpoints()
    document = openapi_document(endpoints)

    async def openapi(request: Request) -> Response:
        return CompactJSON(document)

    routes = [Route("/health", _health), Route("/api/openapi.json", openapi)]
    routes += [Route(e.path, handle(e), methods=[e.method]) for e in endpoints]
    routes += dashboard_routes()  # last: its catch-all answers the SPA's own paths
    # Counted only when exported: without metrics_bind a request pays nothing for them.
    registry = CollectorRegistry() if api["metrics_bind"] else None
    middleware = []
    if api["proxy_hops"]:
        # Behind a proxy every request comes from the proxy's address: without this
        # the per-address login limit would lock out every user at once.
        middleware.append(Middleware(ForwardedClient, hops=api["proxy_hops"]))
    if registry:
        middleware.append(Middleware(RequestMetrics, registry=registry))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ParamError: _param_error,
            NotFound: _not_found,
            DatabaseUnavailable: _unavailable,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    secret = api["session_secret"] or secrets.token_urlsafe(32)
    sessions = SessionCodec(secret, api["session_max_age_s"], api["cookie_secure"])
    app.state.settings = settings
    app.state.clock = clock
    app.state.auth = Authenticator(api, sessions)
    app.state.throttle = throttle or LoginThrottle(monotonic)
    app.state.db = ReadDatabase(
        settings.db_path,
        api["db_connections"],
        settings.section("database")["busy_timeout_ms"],
        api["db_inline_ms"],
    )
    app.state.endpoints = endpoints
    app.state.metrics_registry = registry
    return app


def describe_settings(settings: ApiSettings) -> dict[str, Any]:
    """What apiserver serves and how, for the start-up log line (no secrets)."""
    api = settings.api
    return {
        "bind": api["bind"],
        "workers": api["workers"],
        "metrics": api["metrics_bind"] or None,
        "config": settings.source,
        "auth": "disabled" if api["auth_disabled"] else "on",
        "accounts": len(api["accounts"]),
        "tokens": len(api["tokens"]),
        "routes": len(all_endpoints()),
        "db": str(settings.db_path),
    }
