"""One scrape for all workers: prometheus_client's multiprocess mode, served by the parent.

Each worker process writes its counters and histograms to memory-mapped files,
one file per process and metric type, in a directory made for this run; the
parent's listener sums every file at scrape time. Why this design:

* a scrape sees the sum over workers whichever worker it would have reached,
  with no messages between processes and nothing shared on the request path
  (a worker's update is a write to its own mapped page);
* the counts of a worker survive it (its file stays until the server stops),
  so totals never go backwards;
* the directory is new and empty at every start (stale files of a previous run
  would be added to this one's) and removed at exit.

prometheus_client chooses this mode when it is first imported, from the
environment variable, so :meth:`MetricsExport.prepare` must run before anything
imports it, and before the workers are forked (they inherit the variable).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:  # imported at run time only after prepare()
    from projectord.metrics_listener import MetricsListener

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = structlog.get_logger("apiserver")


class MetricsExport:
    """The per-run metrics directory and the listener that serves its sum."""

    def __init__(self, bind: str, directory: str) -> None:
        self.bind = bind
        self.directory = directory
        self.listener: MetricsListener | None = None

    @classmethod
    def prepare(cls, bind: str) -> MetricsExport:
        """Make the run's directory and point prometheus_client at it.

        Raises RuntimeError if prometheus_client was imported already: its
        metrics would then stay private to each process, and scrapes show nothing.
        """
        if "prometheus_client" in sys.modules:
            raise RuntimeError("prometheus_client was imported before the metrics directory")
        # Private (0700) and in the temp dir (TMPDIR; a private /tmp under systemd).
        directory = tempfile.mkdtemp(prefix="kanade-apiserver-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        return cls(bind, directory)

    def serve(self) -> None:
        """Start the listener (on a thread: call it after the last fork)."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        from projectord.metrics_listener import start_metrics_listener

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.directory)
        self.listener = start_metrics_listener(self.bind, registry, log)

    def close(self) -> None:
        """Stop the listener and remove the directory."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(self.directory, ignore_errors=True)
