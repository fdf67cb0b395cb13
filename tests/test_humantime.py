"""Humantime durations as the agents' manifests spell them (wire-contract 1.3)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from projectord.humantime import DurationError, parse_duration

DAY = 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # the examples of wire-contract 1.3
        ("30s", 30),
        ("10m", 600),
        ("6h", 6 * 3600),
        ("1d", DAY),
        ("1h 30m", 5400),
        ("1h30m", 5400),
        # every unit of the grammar
        ("2w", 14 * DAY),
        ("1M", 30.44 * DAY),
        ("3M", 3 * 30.44 * DAY),
        ("1y", 365.25 * DAY),
        ("500ms", 0.5),
        ("250us", 0.00025),
        ("1500usec", 0.0015),
        ("20msec", 0.02),
        ("0s", 0),
        ("45sec", 45),
        ("1second", 1),
        ("2seconds", 2),
        ("5min", 300),
        ("1minute", 60),
        ("3minutes", 180),
        ("2hr", 7200),
        ("1hour", 3600),
        ("4hours", 4 * 3600),
        ("1day", DAY),
        ("3days", 3 * DAY),
        ("1week", 7 * DAY),
        ("2weeks", 14 * DAY),
        ("1month", 30.44 * DAY),
        ("2months", 2 * 30.44 * DAY),
        ("1year", 365.25 * DAY),
        ("2years", 2 * 365.25 * DAY),
        # combinations, with and without spaces, units in any order
        ("1d 2h 3m 4s", DAY + 2 * 3600 + 3 * 60 + 4),
        ("1d2h3m4s", DAY + 2 * 3600 + 3 * 60 + 4),
        ("30m 1h", 5400),
        ("1s 500ms", 1.5),
        ("  10m  ", 600),
        ("2 hours 15 minutes", 2 * 3600 + 15 * 60),
        ("007s", 7),
    ],
)
def test_accepted(text, seconds):
    value = parse_duration(text)
    assert isinstance(value, timedelta)
    assert value == timedelta(seconds=seconds)


def test_month_and_year_are_the_contracts_lengths():
    assert parse_duration("1M") == timedelta(days=30.44)
    assert parse_duration("1y") == timedelta(days=365.25)
    assert parse_duration("1M") != parse_duration("1m")  # month, not minute


def test_nanoseconds_are_accepted():
    assert parse_duration("1000ns") == timedelta(microseconds=1)
    assert parse_duration("5000nsec") == timedelta(microseconds=5)


@pytest.mark.parametrize(
    "text",
    [
        # bare numbers (no unit)
        "30",
        "0",
        "1h30",
        "10m 5",
        # negatives and signs
        "-5s",
        "-1h",
        "1h -30m",
        "+5s",
        # unknown or miscased units
        "5x",
        "5sx",
        "10 parsecs",
        "1H",
        "1S",
        "1D",
        "1Y",
        "3mon",
        "1µs",
        # empty or blank
        "",
        " ",
        "\t\n",
        # no number, decimals, separators
        "s",
        "h30m",
        "1.5h",
        "1,5h",
        "1h,30m",
        "1h+30m",
        "1_000s",
    ],
)
def test_rejected(text):
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 30, 1.5, b"30s", timedelta(seconds=30)])
def test_non_strings_rejected(value):
    with pytest.raises(DurationError):
        parse_duration(value)


def test_error_is_a_value_error_naming_the_input():
    assert issubclass(DurationError, ValueError)
    with pytest.raises(DurationError, match="'5x'"):
        parse_duration("5x")
    with pytest.raises(DurationError, match="'x'"):
        parse_duration("5x")


@pytest.mark.parametrize("text", ["99999999999y", "3000000y", "100000000000000000000000s"])
def test_durations_too_large_to_represent_are_duration_errors(text):
    """A manifest's absurd timeout is an invalid duration, not a crash (OverflowError)."""
    with pytest.raises(DurationError):
        parse_duration(text)
