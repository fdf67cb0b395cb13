"""The WAL checkpointer against real SQLite files (projectord/wal_checkpointer.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from projectord.wal_checkpointer import WalCheckpointer


def wal_database(path: Path) -> sqlite3.Connection:
    """A writer like projectord's, but whose own checkpoints are off."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    return conn


def test_committed_pages_reach_the_database_file_while_the_writer_stays_open(tmp_path):
    db = tmp_path / "backend.db"
    writer = wal_database(db)
    writer.executemany("INSERT INTO t (body) VALUES (?)", [("x" * 500,) for _ in range(2000)])
    size_before = db.stat().st_size
    assert size_before < 100_000  # the rows are only in the WAL so far
    checkpointer = WalCheckpointer(db, interval_s=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        checkpointer.stop()
    assert checkpointer.checkpoints >= 1
    assert db.stat().st_size > size_before + 2000 * 500
    # The writer goes on writing after the checkpointer stopped.
    writer.execute("INSERT INTO t (body) VALUES ('after')")
    assert writer.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2001
    writer.close()


def test_a_missing_database_is_logged_and_not_created(tmp_path, capsys):
    db = tmp_path / "gone" / "backend.db"
    checkpointer = WalCheckpointer(db, interval_s=0.01)
    checkpointer.start()
    checkpointer.stop()
    assert not db.exists()
    assert "wal_checkpoint_failed" in capsys.readouterr().out
