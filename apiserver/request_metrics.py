"""Request counts and latency by route template and status (ASGI middleware).

The route label is the matched route's template (``/api/agents/{pc_id}``),
never the raw path, and methods outside the standard set count as ``other``:
a client must not be able to create series at will. A path no route matches
counts as ``unmatched``.

With several workers, each writes its values to files in the directory that
:mod:`metrics_export` prepares, and the parent sums them at scrape time; in a
single process they live in :attr:`RequestMetrics.registry` as usual.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "kanade_apiserver_"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# The API answers in milliseconds; a cold cache or a locked database takes longer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestMetrics:
    """Wraps an ASGI app; counts and times every HTTP request it answers."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry | None = None) -> None:
        self.app = app
        self.registry = registry or CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter(
            PREFIX + "requests", "HTTP requests answered.", labels, registry=self.registry
        )
        self.latency = Histogram(
            PREFIX + "request_duration_seconds",
            "Time from a request's arrival to the end of its response body.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Children by label values: labels() validates and locks on every call,
        # a dict lookup does not, and the set of keys is small.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        route = getattr(scope.get("route"), "path", UNMATCHED)
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            values = (method, route, str(status))
            children = self.requests.labels(*values), self.latency.labels(*values)
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
