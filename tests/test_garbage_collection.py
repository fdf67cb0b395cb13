"""The daemon's collector thresholds (projectord/garbage_collection.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from projectord import cli
from projectord.daemon import Daemon
from projectord.garbage_collection import YOUNG_THRESHOLD, tune_for_batches


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield before
    gc.set_threshold(*before)


def test_tune_raises_the_young_threshold_and_keeps_the_older_ones(thresholds):
    gc.set_threshold(700, 7, 13)
    tune_for_batches()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 7, 13)


def test_run_tunes_the_collector_before_the_daemon_starts(thresholds, tmp_path: Path, monkeypatch):
    seen = []

    async def fake_run(self: Daemon) -> int:
        seen.append(gc.get_threshold())
        return 0

    monkeypatch.delenv("KANADE_CONFIG", raising=False)
    monkeypatch.setattr(Daemon, "run", fake_run)
    assert cli.main(["run", "--db", str(tmp_path / "backend.db")]) == 0
    assert seen == [(YOUNG_THRESHOLD, 10, 10)]


def test_migrate_leaves_the_collector_alone(thresholds, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("KANADE_CONFIG", raising=False)
    assert cli.main(["migrate", "--db", str(tmp_path / "backend.db")]) == 0
    assert gc.get_threshold() == (700, 10, 10)
