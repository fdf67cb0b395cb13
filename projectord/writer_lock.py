"""The one-writer guarantee: an exclusive lock file beside the database.

Two projectords on one file would each checkpoint their own view and both fire
the scheduler; the second one must refuse to start instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class WriterLockHeld(Exception):
    """Another process holds the writer lock of this database."""


class WriterLock:
    """An advisory ``flock`` on ``<db>.lock``, held for the life of the process."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(str(Path(db_path).expanduser()) + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise WriterLockHeld naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            db = self.path.with_suffix("")
            raise WriterLockHeld(
                f"another projectord (pid {holder}) is already writing {db}; "
                "only one writer may run per database file"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
