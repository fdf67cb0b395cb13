"""``/api/auth/*``: log in to the dashboard, log out, who am I."""

from __future__ import annotations

import json
from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..auth.passwords import verify_password
from ..endpoint import CompactJSON, Endpoint
from ..openapi_types import obj, string

MAX_BODY = 4096  # bytes of a login request
log = structlog.get_logger("apiserver.auth")


def _bad(message: str, status: int = 400) -> CompactJSON:
    return CompactJSON({"error": message}, status_code=status)


async def login(request: Request, args: dict[str, Any]) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _bad(f"request body: at most {MAX_BODY} bytes", 413)
    try:
        body = json.loads(raw)
    except ValueError:
        return _bad('request body: expected JSON {"username": ..., "password": ...}')
    if not isinstance(body, dict):
        return _bad("request body: expected a JSON object")
    user, password = body.get("username"), body.get("password")
    for name, value in (("username", user), ("password", password)):
        if not isinstance(value, str) or not value:
            return _bad(f"request body field '{name}': expected a non-empty string")
    state = request.app.state
    address = request.client.host if request.client else "unknown"
    wait = state.throttle.retry_after(user, address)
    if wait is not None:
        log.warning("login_throttled", user=user, address=address, retry_after_s=wait)
        return CompactJSON(
            {"error": "too many failed logins; try again later"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    account = state.auth.accounts.get(user)
    stored = account["password_hash"] if account else None
    if not await run_in_threadpool(verify_password, stored, password) or account is None:
        state.throttle.failed(user, address)
        log.warning("login_failed", user=user, address=address)
        # Same answer for an unknown user and a wrong password.
        return _bad("invalid user name or password", 401)
    state.throttle.succeeded(user)
    log.info("login", user=user, role=account["role"], address=address)
    response = CompactJSON({"username": user, "role": account["role"]})
    state.auth.sessions.set(response, user)
    return response


async def logout(request: Request, args: dict[str, Any]) -> Any:
    response = CompactJSON({"logged_out": True})
    request.app.state.auth.sessions.clear(response)
    return response


async def me(request: Request, args: dict[str, Any]) -> Any:
    p = request.state.principal
    return {"username": p.name, "role": p.role, "via": p.via}


_WHO = obj(username=string(), role=string(enum=["viewer", "operator", "admin"]))

ENDPOINTS = [
    Endpoint(
        "/api/auth/login",
        login,
        "Log in with a dashboard account; sets the session cookie.",
        _WHO,
        public=True,
        method="POST",
        uses_db=False,
        body=obj(username=string(), password=string()),
        statuses={
            401: "Invalid user name or password.",
            413: "Request body too large.",
            429: "Too many failed attempts; see Retry-After.",
        },
    ),
    Endpoint(
        "/api/auth/logout",
        logout,
        "Log out: clears the session cookie.",
        obj(logged_out={"type": "boolean"}),
        public=True,
        method="POST",
        uses_db=False,
    ),
    Endpoint(
        "/api/auth/me",
        me,
        "The logged-in user or service token and its role.",
        obj(username=string(), role=string(), via=string(enum=["session", "token", "disabled"])),
        uses_db=False,
    ),
]
