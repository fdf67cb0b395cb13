"""Lowering ``when``, the dedup rules, suppression windows and mark keys (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projectord.scheduler.calendar_fires import OneShot, Repeating, WhenError
from projectord.scheduler.dedup import (
    eligible_pcs,
    in_flight_count,
    mark_key_pc,
    mark_key_target,
    suppression_window,
    target_armed,
    unsuppressed,
    within_cap,
)
from projectord.scheduler.triggers import AgentEvent, Calendar, Reconcile, parse_when

NOW = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
H6 = timedelta(hours=6)


# --------------------------------------------------------------------------- when


@pytest.mark.parametrize(
    ("when", "trigger"),
    [
        ({"per_pc": "once"}, Reconcile(True, None)),
        ({"per_pc": {"every": "6h"}}, Reconcile(True, H6)),
        ({"per_target": "once"}, Reconcile(False, None)),
        ({"per_target": {"every": "1h 30m"}}, Reconcile(False, timedelta(minutes=90))),
        ({"calendar": {"at": "09:00", "days": ["mon-fri"]}}, Calendar(Repeating(9, 0, "1-5"))),
        ({"calendar": {"at": "2026-07-01 09:00"}}, Calendar(OneShot(datetime(2026, 7, 1, 9)))),
        ({"on": ["startup", "logon"]}, AgentEvent(("startup", "logon"))),
    ],
)
def test_when_shapes(when, trigger):
    assert parse_when(when) == trigger


@pytest.mark.parametrize(
    ("when", "field"),
    [
        ({}, "when"),
        ({"per_pc": "once", "calendar": {"at": "09:00"}}, "when"),
        ({"cron": "* * * * *"}, "when"),
        ({"per_pc": "twice"}, r"when\.per_pc"),
        ({"per_pc": {"every": "6"}}, r"when\.per_pc\.every"),  # a bare number has no unit
        ({"per_target": {"every": "0s"}}, r"when\.per_target\.every"),
        ({"per_target": {"every": 3600}}, r"when\.per_target\.every"),
        ({"per_pc": {"every": "1h", "at": "x"}}, r"when\.per_pc"),
        ({"on": "startup"}, r"when\.on"),
        ("per_pc", "when"),
    ],
)
def test_bad_when_names_the_field(when, field):
    with pytest.raises(WhenError, match=field):
        parse_when(when)


# --------------------------------------------------------------------------- once per PC


def test_once_per_pc_never_rearms():
    completions = {"pc1": NOW - timedelta(days=300)}
    assert eligible_pcs(["pc1", "pc2"], completions, None, NOW) == ["pc2"]


def test_cooldown_boundary_is_inclusive():
    expected = ["a", "b", "c"]
    completions = {
        "a": NOW - H6,  # exactly the cooldown ago: eligible
        "b": NOW - H6 + timedelta(microseconds=1),  # just inside: not yet
    }
    assert eligible_pcs(expected, completions, H6, NOW) == ["a", "c"]


def test_completions_of_pcs_outside_expected_are_ignored():
    assert eligible_pcs(["pc1"], {"pc9": NOW}, None, NOW) == ["pc1"]


# --------------------------------------------------------------------------- once per target


def test_target_success_on_a_pc_now_offline_still_counts():
    """#912: the roster includes offline PCs; the alive set must not decide."""
    roster = ["online", "went-offline"]
    completions = {"went-offline": NOW - timedelta(hours=1)}
    assert target_armed(roster, completions, None, NOW) is False
    assert target_armed(roster, completions, H6, NOW) is False
    assert target_armed(roster, completions, timedelta(minutes=59), NOW) is True


def test_target_with_no_success_is_armed():
    assert target_armed(["pc1"], {}, None, NOW) is True
    assert target_armed(["pc1"], {"other-target-pc": NOW}, None, NOW) is True


# --------------------------------------------------------------------------- suppression


@pytest.mark.parametrize(
    ("jitter", "timeout", "retry_max", "backoff", "window"),
    [
        (0, 0, 0, 0, 90),  # clamped up to the minimum
        (0, 60, 0, 0, 150),  # timeout + 90 s drain margin
        (300, 600, 0, 0, 990),
        (0, 3600, 0, 0, 1800),  # clamped down to 30 min
        (0, 3600, 2, 60, 1800 + 2 * 3660),  # retries added after the clamp
    ],
)
def test_suppression_window(jitter, timeout, retry_max, backoff, window):
    s = timedelta(seconds=1)
    got = suppression_window(jitter * s, timeout * s, retry_max, backoff * s)
    assert got == window * s


def test_marks_younger_than_the_window_suppress():
    window = timedelta(minutes=10)
    marks = {
        "young": NOW - timedelta(minutes=9),
        "old": NOW - window,  # exactly the window: no longer suppressed
        "unparseable": None,  # fail open
    }
    pcs = ["young", "old", "unparseable", "unmarked"]
    assert unsuppressed(pcs, marks, window, NOW) == ["old", "unparseable", "unmarked"]


def test_max_concurrent_keeps_the_first_pcs():
    assert within_cap(["a", "b", "c"], 5, 3) == ["a", "b"]
    assert within_cap(["a", "b"], 2, 5) == []
    assert within_cap(["a", "b"], None, 100) == ["a", "b"]


def test_mark_keys_are_length_prefixed():
    assert mark_key_pc("collect-winlog-events", "PC-01") == "pc.21.collect-winlog-events.5.PC-01"
    assert mark_key_target("collect-winlog-events") == "target.21.collect-winlog-events"
    # Lengths are in bytes, so ids with dots cannot collide.
    assert mark_key_pc("a.1", "b") != mark_key_pc("a", "1.b")
    assert mark_key_pc("é", "x") == "pc.2.é.1.x"


def test_in_flight_counts_started_and_dispatched_but_not_finished():
    mark = NOW - timedelta(minutes=5)
    dispatched = {"waiting": mark, "started": mark, "failed-since": mark, "done-before": mark}
    last_finished = {"failed-since": NOW - timedelta(minutes=1), "done-before": mark - H6}
    running = {"started", "other-schedule"}
    # started + other-schedule (running) + waiting + done-before (finished before the mark)
    assert in_flight_count(running, dispatched, last_finished) == 4
