"""WAL checkpoints on a thread and connection of their own, off the writer's commits.

SQLite's automatic checkpoint runs inside the commit that crosses its
threshold, on the one writer thread, so every projector waited while tens of
megabytes of pages were copied into the database file and synced.

Here a second connection runs a PASSIVE checkpoint every second, which copies
what no reader still needs and never blocks the writer or a reader. The
writer keeps its automatic checkpoint as a backstop; with this one running it
rarely has anything left to do. The projector benchmark drained 5-12 % faster
(tests/bench/bench_projector.py, runs with and without it alternated).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

log = structlog.get_logger("projectord.wal_checkpointer")


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s`` until stopped."""

    def __init__(self, db_path: str | Path, interval_s: float = 1.0) -> None:
        self.db_path = Path(db_path).expanduser()
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self.checkpoints = 0  # completed calls, for tests and debugging

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint in progress, if any (the writer's close does the last)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        # mode=rw: never create a database file that is not there.
        uri = f"{self.db_path.resolve().as_uri()}?mode=rw"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("wal_checkpoint_failed", db=str(self.db_path), error=str(exc))
            return
        try:
            while not self._stop.wait(self.interval_s):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # the writer's own checkpoint still runs
            log.warning("wal_checkpoint_failed", db=str(self.db_path), error=str(exc))
