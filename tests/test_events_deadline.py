"""The reaper deadline of a started event (projection-semantics 5, step 2).

``expires_at = recorded_at + timeout + max(120 s, timeout / 2)``, the added span
capped at 365 days; no known timeout means no deadline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projectord.humantime import parse_duration
from projectord.projectors.events import reaper_deadline
from projectord.timestamps import format_db

RECORDED = "2026-05-20T12:00:00.000000+00:00"
T0 = datetime(2026, 5, 20, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timeout", "span"),
    [
        ("10m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1, minutes=30)),
        ("30s", timedelta(minutes=2, seconds=30)),
        ("0s", timedelta(minutes=2)),
        ("4m", timedelta(minutes=6)),  # timeout / 2 == 120 s: both rules agree
        ("5m", timedelta(minutes=7, seconds=30)),  # timeout / 2 wins from here on
        ("3m", timedelta(minutes=5)),  # 120 s wins below 4 minutes
        ("1d", timedelta(days=1, hours=12)),
        ("200d", timedelta(days=300)),
        ("243d", timedelta(days=364, hours=12)),
        ("244d", timedelta(days=365)),  # 366 d capped
        ("400d", timedelta(days=365)),
        ("1y", timedelta(days=365)),
        ("500ms", timedelta(seconds=120, milliseconds=500)),
    ],
)
def test_examples(timeout, span):
    assert reaper_deadline(RECORDED, parse_duration(timeout)) == format_db(T0 + span)


def test_literal_values():
    assert reaper_deadline(RECORDED, timedelta(minutes=10)) == "2026-05-20T12:15:00.000000+00:00"
    assert reaper_deadline(RECORDED, timedelta(days=400)) == "2027-05-20T12:00:00.000000+00:00"


def test_no_timeout_means_no_deadline():
    assert reaper_deadline(RECORDED, None) is None


def test_recorded_at_in_any_rfc3339_form():
    # recorded_at is normally in storage format; any RFC 3339 form gives the same deadline.
    for recorded in (
        "2026-05-20T12:00:00Z",
        "2026-05-20T21:00:00+09:00",
        "2026-05-20T12:00:00.000000999Z",
    ):
        assert reaper_deadline(recorded, timedelta(minutes=10)) == (
            "2026-05-20T12:15:00.000000+00:00"
        )
    assert reaper_deadline("2026-05-20T12:00:00.123456+00:00", timedelta(hours=1)) == (
        "2026-05-20T13:30:00.123456+00:00"
    )


@pytest.mark.parametrize(
    "timeout",
    [timedelta(days=700_000_000), timedelta.max, parse_duration("2000000y")],
)
def test_huge_timeouts_are_capped_not_overflowing(timeout):
    """The cap applies however large the timeout (a manifest may say "2000000y")."""
    assert reaper_deadline(RECORDED, timeout) == format_db(T0 + timedelta(days=365))
