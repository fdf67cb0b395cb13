"""One writer per database file (DESIGN decision 4).

``flock`` locks belong to an open file description, so a second WriterLock in
the same process (its own ``open``) conflicts exactly as another process would.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from projectord.writer_lock import WriterLock, WriterLockHeld


@pytest.fixture
def db(tmp_path):
    return tmp_path / "state" / "backend.db"


def test_second_lock_on_the_same_file_is_refused_naming_the_holder(db):
    first = WriterLock(db)
    first.acquire()
    try:
        second = WriterLock(db)
        with pytest.raises(WriterLockHeld) as info:
            second.acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message
        assert str(db) in message
        assert "only one writer" in message
    finally:
        first.release()


def test_release_allows_reacquire(db):
    first = WriterLock(db)
    first.acquire()
    first.release()
    second = WriterLock(db)
    second.acquire()  # must not raise
    try:
        # and now the first is the one refused
        with pytest.raises(WriterLockHeld):
            WriterLock(db).acquire()
    finally:
        second.release()
    first.acquire()
    first.release()


def test_lock_file_sits_beside_the_database_and_names_the_holder(db):
    lock = WriterLock(db)
    lock.acquire()
    try:
        assert lock.path == db.parent / "backend.db.lock"
        assert lock.path.read_text().strip() == str(os.getpid())
    finally:
        lock.release()


def test_refused_attempt_does_not_disturb_the_holder(db):
    first = WriterLock(db)
    first.acquire()
    try:
        for _ in range(3):
            with pytest.raises(WriterLockHeld):
                WriterLock(db).acquire()
        assert first.path.read_text().strip() == str(os.getpid())
    finally:
        first.release()
    # after release, a fresh instance can take it
    again = WriterLock(db)
    again.acquire()
    again.release()


def test_release_is_idempotent_and_safe_unacquired(db):
    lock = WriterLock(db)
    lock.release()  # never acquired
    lock.acquire()
    lock.release()
    lock.release()
    other = WriterLock(db)
    other.acquire()
    other.release()


def test_different_databases_do_not_conflict(tmp_path):
    a, b = WriterLock(tmp_path / "a.db"), WriterLock(tmp_path / "b.db")
    a.acquire()
    b.acquire()
    a.release()
    b.release()


def test_stale_lock_file_without_a_holder_is_taken(db):
    db.parent.mkdir(parents=True)
    (db.parent / "backend.db.lock").write_text("999999\n")
    lock = WriterLock(db)
    lock.acquire()
    try:
        assert lock.path.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()


def test_projectord_migrate_refuses_a_held_database(db, tmp_path):
    """Another process holding the lock: `projectord migrate` exits 1 naming the pid."""
    holder = WriterLock(db)
    holder.acquire()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANADE_")}
        proc = subprocess.run(
            [sys.executable, "-m", "projectord", "migrate", "--db", str(db)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        holder.release()
    assert proc.returncode == 1, proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr
    assert not db.exists()  # nothing was migrated
