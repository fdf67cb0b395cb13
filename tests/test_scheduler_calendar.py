"""Calendar triggers: day tokens, one-shots, time zones and the DST rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projectord.scheduler.calendar_fires import (
    OneShot,
    Repeating,
    WhenError,
    days_field,
    fires_between,
    next_fire,
    parse_calendar,
)
from projectord.scheduler.zones import ZoneError, local_midnight, resolve_zone, wall_to_instant

BERLIN = resolve_zone("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(spec: dict, zone, after: datetime, days: int) -> list[datetime]:
    return fires_between(parse_calendar(spec), zone, after, after + timedelta(days=days))


# --------------------------------------------------------------------------- day tokens


@pytest.mark.parametrize(
    ("days", "field"),
    [
        (None, "*"),
        (["*"], "*"),
        (["mon-fri"], "1-5"),
        (["MON", "wed"], "1,3"),
        (["0"], "0"),
        (["7"], "0"),  # 0 and 7 are both Sunday
        (["sun"], "0"),
        (["tue#2"], "2#2"),
        (["friL"], "5L"),
        (["fri-mon"], "5,6,0,1"),  # across the weekend
        (["sat-sun"], "6,0"),
    ],
)
def test_days_become_a_cron_weekday_field(days, field):
    assert days_field(days) == field


@pytest.mark.parametrize("days", [["funday"], ["8"], ["tue#6"], ["mon-"], "mon", [], [1]])
def test_bad_days_name_the_field(days):
    with pytest.raises(WhenError, match=r"when\.calendar\.days"):
        parse_calendar({"at": "09:00", "days": days})


def test_weekday_numbers_start_at_sunday_not_monday():
    """The classic trap: some libraries number Monday 0."""
    got = fires({"at": "09:00", "days": ["1"]}, UTC, utc(2026, 3, 1), 7)
    assert [f.strftime("%a") for f in got] == ["Mon"]
    got = fires({"at": "09:00", "days": ["0"]}, UTC, utc(2026, 3, 2), 7)
    assert [f.strftime("%a") for f in got] == ["Sun"]


def test_nth_and_last_weekday_of_the_month():
    second_tuesdays = fires({"at": "09:00", "days": ["tue#2"]}, UTC, utc(2026, 3, 1), 92)
    assert [f.date().isoformat() for f in second_tuesdays] == [
        "2026-03-10",
        "2026-04-14",
        "2026-05-12",
    ]
    last_fridays = fires({"at": "17:30", "days": ["friL"]}, UTC, utc(2026, 3, 1), 61)
    assert last_fridays == [utc(2026, 3, 27, 17, 30), utc(2026, 4, 24, 17, 30)]


def test_weekdays_only():
    got = fires({"at": "09:00", "days": ["mon-fri"]}, UTC, utc(2026, 3, 6, 9, 0), 7)
    # Strictly after the start instant: Friday 09:00 itself is not included.
    assert [f.strftime("%a %d") for f in got] == ["Mon 09", "Tue 10", "Wed 11", "Thu 12", "Fri 13"]


# --------------------------------------------------------------------------- at


@pytest.mark.parametrize("at", ["2026-07-01 09:00", "2026-07-01T09:00", "2026/07/01 09:00"])
def test_one_shot_date_forms(at):
    assert parse_calendar({"at": at}) == OneShot(datetime(2026, 7, 1, 9, 0))


def test_repeating_at():
    assert parse_calendar({"at": "07:05"}) == Repeating(7, 5, "*")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"at": "24:00"}, "at"),
        ({"at": "9:00"}, "at"),
        ({"at": "2026-02-30 09:00"}, "at"),
        ({"at": 900}, "at"),
        ({}, "at"),
        ({"at": "2026-07-01 09:00", "days": ["mon"]}, "days"),
        ("09:00", "calendar"),
    ],
)
def test_bad_calendar_names_the_field(spec, field):
    with pytest.raises(WhenError, match=rf"when\.calendar(\.{field})?"):
        parse_calendar(spec)


def test_one_shot_fires_once_and_never_in_the_past():
    rule = parse_calendar({"at": "2026-07-01 09:00"})
    assert fires_between(rule, BERLIN, utc(2026, 6, 1), utc(2026, 8, 1)) == [utc(2026, 7, 1, 7, 0)]
    assert next_fire(rule, BERLIN, utc(2026, 7, 1, 7, 0)) is None
    assert next_fire(rule, BERLIN, utc(2026, 6, 1)) == utc(2026, 7, 1, 7, 0)


# --------------------------------------------------------------------------- zones and DST


def test_a_wall_time_skipped_by_spring_forward_does_not_fire_that_day():
    # Europe/Berlin jumps from 02:00 to 03:00 on 2026-03-29.
    got = fires({"at": "02:30"}, BERLIN, utc(2026, 3, 27, 12), 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_a_wall_time_repeated_by_fall_back_fires_once_at_the_earlier_instant():
    # 02:30 happens twice on 2026-10-25 (CEST then CET); the first is 00:30 UTC.
    got = fires({"at": "02:30"}, BERLIN, utc(2026, 10, 24, 12), 2)
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_the_local_time_is_kept_across_a_dst_change():
    got = fires({"at": "09:00"}, BERLIN, utc(2026, 3, 28), 2)
    assert got == [utc(2026, 3, 28, 8, 0), utc(2026, 3, 29, 7, 0)]


def test_zone_names():
    assert resolve_zone("utc") is UTC and resolve_zone("UTC") is UTC
    assert str(resolve_zone("America/New_York")) == "America/New_York"
    assert resolve_zone("local") is not None
    with pytest.raises(ZoneError, match="Mars/Olympus"):
        resolve_zone("Mars/Olympus")


def test_wall_to_instant_and_midnight():
    assert wall_to_instant(datetime(2026, 3, 29, 2, 30), BERLIN) is None
    assert wall_to_instant(datetime(2026, 3, 29, 3, 0), BERLIN) == utc(2026, 3, 29, 1, 0)
    assert local_midnight("2026-07-01", BERLIN) == utc(2026, 6, 30, 22, 0)
    # Midnight does not exist on this day in Santiago (DST starts at 00:00).
    santiago = resolve_zone("America/Santiago")
    assert local_midnight("2026-09-06", santiago) == utc(2026, 9, 6, 4, 0)


def test_next_fire_looks_months_ahead():
    rule = parse_calendar({"at": "10:00", "days": ["fri#5"]})
    # The first month after 2026-03-01 with a fifth Friday is May 2026.
    assert next_fire(rule, UTC, utc(2026, 3, 1)) == utc(2026, 5, 29, 10, 0)
