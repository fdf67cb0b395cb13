"""The HTTP listener Prometheus scrapes (``GET /metrics``), on a thread of its own.

Used by projectord and by apiserver's parent process. An address that cannot be
bound is logged as a warning and the process goes on without metrics: the
projection and the API matter more than their figures, and a scrape target that
is down is what Prometheus alerts on anyway.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.registry import Collector

from .config import parse_bind


class MetricsListener:
    """A running listener; :meth:`close` stops it and frees the port."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def start_metrics_listener(bind: str, registry: Collector, log: Any) -> MetricsListener | None:
    """Serve ``registry`` on ``bind`` (HOST:PORT); None, after a warning, when it cannot."""
    host, port = parse_bind(bind)
    try:
        server, thread = start_http_server(port, host, registry)
    except OSError as exc:
        log.warning(
            "metrics_unavailable",
            bind=bind,
            error=str(exc) or type(exc).__name__,
            detail="serving without metrics",
        )
        return None
    log.info("metrics_listening", bind=bind)
    return MetricsListener(server, thread)
