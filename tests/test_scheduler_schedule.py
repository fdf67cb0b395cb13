"""Reading a Schedule from KV: every field validated, every error naming its field."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest

from projectord.scheduler.calendar_fires import Repeating
from projectord.scheduler.schedule import ScheduleError, Target, Wave, parse_schedule
from projectord.scheduler.triggers import Calendar, Reconcile
from projectord.scheduler.zones import resolve_zone

FULL = {
    "id": "nightly-inventory",
    "when": {"calendar": {"at": "02:00", "days": ["mon-fri"]}},
    "job_id": "inv-hw",
    "target": {"groups": ["office"], "pcs": ["pc-9"]},
    "jitter": "5m",
    "active": {"from": "2026-01-01"},
    "constraints": {"window": "01:00-05:00", "max_concurrent": 50, "skip_dates": ["2026-12-24"]},
    "on_failure": {"retry": {"max": 2, "backoff": "10m"}},
    "tz": "Europe/Berlin",
    "starting_deadline": "30m",
    "runs_on": "backend",
    "enabled": True,
    "tags": ["inventory"],
    "origin": {"path": "schedules/nightly.yaml"},
}


def parse(body: dict, key: str | None = None):
    return parse_schedule(key or body.get("id", "x"), json.dumps(body))


def test_a_full_schedule():
    s = parse(FULL)
    assert s.trigger == Calendar(Repeating(2, 0, "1-5"))
    assert s.zone == resolve_zone("Europe/Berlin")
    assert s.target == Target(False, ("office",), ("pc-9",))
    assert (s.jitter, s.starting_deadline) == (timedelta(minutes=5), timedelta(minutes=30))
    assert (s.retry_max, s.retry_backoff) == (2, timedelta(minutes=10))
    assert s.max_concurrent == 50 and s.enabled and not s.runs_on_agent
    assert s.constraints["window"] == "01:00-05:00"


def test_defaults():
    s = parse({"id": "s", "when": {"per_pc": "once"}, "job_id": "j", "tz": "utc"})
    assert s.trigger == Reconcile(True, None) and s.zone is UTC
    assert s.target == Target() and not s.target.specified
    assert s.waves == () and s.retry_max == 0 and s.max_concurrent is None
    assert s.enabled and not s.runs_on_agent


def test_rollout_waves():
    body = {
        **FULL,
        "rollout": {
            "waves": [{"group": "canary", "delay": "0s"}, {"group": "all-office", "delay": "1h"}]
        },
    }
    assert parse(body).waves == (
        Wave("canary", timedelta(0)),
        Wave("all-office", timedelta(hours=1)),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "other"}, "id"),
        ({"job_id": ""}, "job_id"),
        ({"when": {"calendar": {"at": "25:00"}}}, r"when\.calendar\.at"),
        ({"tz": "Moon/Base"}, "tz"),
        ({"tz": 5}, "tz"),
        ({"tz": ["utc"]}, "tz"),
        ({"runs_on": "cloud"}, "runs_on"),
        ({"enabled": "yes"}, "enabled"),
        ({"jitter": "5 parsecs"}, "jitter"),
        ({"starting_deadline": 30}, "starting_deadline"),
        ({"target": {"all": "true"}}, r"target\.all"),
        ({"target": {"groups": "office"}}, r"target\.groups"),
        ({"constraints": {"max_concurrent": -1}}, r"constraints\.max_concurrent"),
        ({"on_failure": {"retry": {"max": 11}}}, r"on_failure\.retry\.max"),
        ({"on_failure": {"retry": {"max": 1, "backoff": "soon"}}}, r"on_failure\.retry\.backoff"),
        ({"rollout": {"strategy": "canary"}}, r"rollout\.strategy"),
        ({"rollout": {"waves": [{"delay": "1h"}]}}, r"rollout\.waves\[0\]\.group"),
        ({"rollout": {"waves": [{"group": "g", "delay": "x"}]}}, r"rollout\.waves\[0\]\.delay"),
        ({"active": "always"}, "active"),
    ],
)
def test_errors_name_the_field(change, field):
    with pytest.raises(ScheduleError, match=field):
        parse({**FULL, **change}, key="nightly-inventory")


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'"x"', b"[" * 100_000 + b"]" * 100_000])
def test_not_an_object(raw):
    with pytest.raises(ScheduleError, match="JSON"):
        parse_schedule("s", raw)
