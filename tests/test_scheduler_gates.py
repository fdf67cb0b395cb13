"""Freeze, active window and constraints gates (pure), with their failure directions."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from projectord.scheduler.gates import (
    active_reason,
    constraints_reason,
    freeze_reason,
    parse_bound,
    window_contains,
)
from projectord.scheduler.zones import resolve_zone

BERLIN = resolve_zone("Europe/Berlin")
NOW = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin


# --------------------------------------------------------------------------- freeze


@pytest.mark.parametrize(
    ("raw", "frozen"),
    [
        (None, False),  # key absent
        (b"{}", True),  # frozen until the key is deleted
        (b'{"reason":"change freeze"}', True),
        (b'{"from":"2026-07-01T09:00:00Z","until":"2026-07-01T11:00:00Z"}', True),
        (b'{"from":"2026-07-01T10:00:00Z"}', True),  # half-open: from is included
        (b'{"until":"2026-07-01T10:00:00Z"}', False),  # ... until is not
        (b'{"from":"2026-07-02","tz":"utc"}', False),
        (b'{"from":"2026-07-01","until":"2026-07-02","tz":"Europe/Berlin"}', True),
        # Midnight of 2026-07-01 in Berlin is 22:00 UTC the day before.
        (b'{"until":"2026-07-01","tz":"Europe/Berlin"}', False),
        # Unreadable: fail closed.
        (b"not json", True),
        (b"[]", True),
        (b'{"from":"yesterday"}', True),
        (b'{"until":"2026-13-01"}', True),
        (b'{"tz":"Mars/Olympus","until":"2020-01-01"}', True),
    ],
)
def test_freeze(raw, frozen):
    assert (freeze_reason(raw, NOW) is not None) is frozen


def test_freeze_reason_is_reported():
    assert freeze_reason(b'{"reason":"release week"}', NOW) == "frozen (release week)"
    assert "unreadable" in freeze_reason(b'{"from":"soon"}', NOW)


# --------------------------------------------------------------------------- active


@pytest.mark.parametrize(
    ("active", "allowed"),
    [
        (None, True),
        ({}, True),
        ({"from": "2026-07-01"}, True),  # Berlin midnight, already past
        ({"from": "2026-07-02"}, False),
        ({"until": "2026-07-01T12:00:00+02:00"}, False),  # its own offset wins: 10:00Z
        ({"until": "2026-07-01T12:00:01+02:00"}, True),
        ({"from": "garbage"}, True),  # fail open
    ],
)
def test_active_window(active, allowed):
    assert (active_reason(active, BERLIN, NOW) is None) is allowed


def test_parse_bound_rejects_non_strings():
    with pytest.raises(ValueError, match="expected a date"):
        parse_bound(20260701, BERLIN)


# --------------------------------------------------------------------------- constraints


@pytest.mark.parametrize(
    ("window", "at", "inside"),
    [
        ("09:00-17:00", time(9, 0), True),
        ("09:00-17:00", time(16, 59), True),
        ("09:00-17:00", time(17, 0), False),  # [start, end)
        ("09:00-17:00", time(8, 59), False),
        ("22:00-06:00", time(23, 30), True),  # wraps past midnight
        ("22:00-06:00", time(5, 59), True),
        ("22:00-06:00", time(6, 0), False),
        ("22:00-06:00", time(12, 0), False),
        ("10:00-10:00", time(10, 0), False),  # empty
    ],
)
def test_window_contains(window, at, inside):
    assert window_contains(window, at) is inside


def test_constraints_use_the_schedule_zone():
    # 12:00 in Berlin, 10:00 UTC.
    assert constraints_reason({"window": "11:00-13:00"}, BERLIN, NOW) is None
    assert constraints_reason({"window": "11:00-13:00"}, UTC, NOW) == "outside window 11:00-13:00"


@pytest.mark.parametrize("window", ["9-17", "09:00-25:00", "", 900, "09:00 - 17:00"])
def test_unparseable_window_blocks(window):
    assert constraints_reason({"window": window}, BERLIN, NOW).startswith("blocked")


def test_skip_dates():
    assert constraints_reason({"skip_dates": ["2026-07-01"]}, BERLIN, NOW) == "skip date 2026-07-01"
    assert constraints_reason({"skip_dates": ["2026-07-02"]}, BERLIN, NOW) is None
    # 23:30 UTC on June 30 is already July 1 in Berlin.
    late = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)
    assert constraints_reason({"skip_dates": ["2026-07-01"]}, BERLIN, late) is not None
    assert constraints_reason({"skip_dates": ["2026-07-01"]}, UTC, late) is None
    assert constraints_reason({"skip_dates": ["July 1"]}, BERLIN, NOW).startswith("blocked")
    assert constraints_reason({"max_concurrent": 5}, BERLIN, NOW) is None
