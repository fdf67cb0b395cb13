"""The daemon's collector thresholds (projectord/garbage_collection.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from projectord.garbage_collection import YOUNG_THRESHOLD, tune_for_batches

# Runs projectord's command line in a fresh interpreter (the CLI configures
# process-wide logging) with Daemon.run replaced by a report of the thresholds
# the daemon would start with.
_PROBE = """
import gc, sys
from projectord import cli
from projectord.daemon import Daemon

async def report(self):
    print("daemon saw", gc.get_threshold())
    return 0

Daemon.run = report
code = cli.main(sys.argv[1:])
print("after", gc.get_threshold())
sys.exit(code)
"""


def cli_thresholds(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "KANADE_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tune_raises_the_young_threshold_and_keeps_the_older_ones():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 7, 13)
        tune_for_batches()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 7, 13)
    finally:
        gc.set_threshold(*before)


def test_run_tunes_the_collector_before_the_daemon_starts(tmp_path: Path):
    out = cli_thresholds("run", "--db", str(tmp_path / "backend.db"))
    assert f"daemon saw ({YOUNG_THRESHOLD}, 10, 10)" in out


def test_migrate_leaves_the_collector_alone(tmp_path: Path):
    out = cli_thresholds("migrate", "--db", str(tmp_path / "backend.db"))
    assert "daemon saw" not in out
    assert "after (700, 10, 10)" in out
    assert (tmp_path / "backend.db").exists()
