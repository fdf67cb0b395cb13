"""The client's address behind trusted reverse proxies (``[apiserver] proxy_hops``).

Behind a proxy every connection comes from the proxy, so the per-address login
limit would block every user at once after one attacker's 30 failures. Each
trusted proxy appends the address it received the request from to
``X-Forwarded-For``; with N trusted proxies the client is the N-th entry from the
right. Entries further left are whatever the client sent and are never trusted.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def forwarded_client(header: str, hops: int) -> str | None:
    """The address ``hops`` entries from the right of an X-Forwarded-For value."""
    entries = [e.strip() for e in header.split(",") if e.strip()]
    return entries[-hops] if len(entries) >= hops else None


class ForwardedClient:
    """ASGI middleware: ``scope["client"]`` (and the scheme) as the proxies saw them."""

    def __init__(self, app: ASGIApp, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
            client = forwarded_client(forwarded.decode("latin-1"), self.hops)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
                proto = [v for k, v in scope["headers"] if k == b"x-forwarded-proto"]
                if proto and proto[-1] in (b"http", b"https"):
                    scope["scheme"] = proto[-1].decode()
        await self.app(scope, receive, send)
