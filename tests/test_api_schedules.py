"""/api/schedules and its sub-resources: list, rejects, upcoming, status, coverage,
preview (zones, DST, gates) and the scheduler's recorded decisions (fires)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from api_harness import NOW, client, seed, ts

from apiserver.params import encode_cursor
from apiserver.schedule_preview import when_display
from projectord.schema import (
    agents,
    execution_results,
    kv_entries,
    schedule_fires,
    scheduler_rejects,
)

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


def utc(*args: int) -> str:
    """An API timestamp."""
    return datetime(*args, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def schedule(sid: str, when: dict, **fields) -> dict:
    """A Schedule as operators store it (wire-contract 6.10)."""
    return {"id": sid, "when": when, "job_id": "inv-hw", "target": {"all": True}, **fields}


def kv(engine, bucket: str, entries: dict) -> None:
    """Mirror ``entries`` (key -> object or raw text) into ``bucket``."""
    seed(
        engine,
        kv_entries,
        [
            {
                "bucket": bucket,
                "key": key,
                "value": value if isinstance(value, str) else json.dumps(value),
                "revision": i + 1,
                "written_at": ts(-H),
            }
            for i, (key, value) in enumerate(entries.items())
        ],
    )


def shown(ago: timedelta) -> str:
    """The API spelling of the stored timestamp ``ago`` before NOW."""
    return ts(-ago).replace("+00:00", "Z")


def agent(pc_id: str, heartbeat_ago: timedelta = M) -> dict:
    return {"pc_id": pc_id, "last_heartbeat": ts(-heartbeat_ago), "updated_at": ts()}


def result(result_id: str, pc_id: str, recorded: timedelta, **row) -> dict:
    """A finished exit-0 run of inv-hw by default; override any column."""
    base = {
        "result_id": result_id,
        "request_id": f"req-{result_id}",
        "pc_id": pc_id,
        "job_id": "inv-hw",
        "exit_code": 0,
        "started_at": ts(-recorded - M),
        "finished_at": ts(-recorded),
        "recorded_at": ts(-recorded),
        "version": "1.0.0",
    }
    return {**base, **row}


# --- list and rejects ------------------------------------------------------------


async def test_list_is_the_valid_schedules_exactly_as_stored(api_db, api):
    assert (await api.get("/api/schedules")).json() == []  # no bucket mirrored yet
    nightly = schedule(
        "nightly",
        {"calendar": {"at": "09:00", "days": ["mon-fri"]}},
        tz="Europe/Berlin",
        tags=["inventory"],
        origin={"path": "schedules/nightly.yaml"},
    )
    catch_up = schedule("catch-up", {"per_pc": {"every": "6h"}}, enabled=False)
    kv(
        api_db,
        "schedules",
        {
            "nightly": nightly,
            "catch-up": catch_up,
            "not-json": "{nope",
            "wrong-id": schedule("other", {"per_pc": "once"}),
            "bad-when": schedule("bad-when", {"per_pc": {"cooldown": "6h"}}),
            "bad-tz-type": schedule("bad-tz-type", {"per_pc": "once"}, tz=5),
        },
    )
    body = (await api.get("/api/schedules")).json()
    assert body == [catch_up, nightly]  # by id, untouched: no key added


async def test_rejects_of_schedules_and_jobs_newest_first(api_db, api):
    assert (await api.get("/api/schedules/rejects")).json() == []
    rows = [
        ("schedule", "old", 3, "when: expected an object", -2 * H),
        ("job", "inv-sw", 7, "execute.shell: expected one of ...", -M),
        ("schedule", "broken", 4, "tz: expected 'local', 'utc' or an IANA zone name", -H),
    ]
    seed(
        api_db,
        scheduler_rejects,
        [
            {"kind": k, "key": key, "revision": rev, "error": err, "seen_at": ts(age)}
            for k, key, rev, err, age in rows
        ],
    )
    body = (await api.get("/api/schedules/rejects")).json()
    assert [(r["kind"], r["key"]) for r in body] == [
        ("job", "inv-sw"),
        ("schedule", "broken"),
        ("schedule", "old"),
    ]
    assert body[1] == {
        "kind": "schedule",
        "key": "broken",
        "revision": 4,
        "error": "tz: expected 'local', 'utc' or an IANA zone name",
        "seen_at": shown(H),
    }


# --- display strings -------------------------------------------------------------


def test_when_display_strings_are_the_originals():
    assert when_display({"per_pc": "once"}) == "per_pc once"
    assert when_display({"per_pc": {"every": "6h"}}) == "per_pc every 6h"
    assert when_display({"per_target": "once"}) == "per_target once"
    assert when_display({"per_target": {"every": "1d 12h"}}) == "per_target every 1d 12h"
    assert when_display({"calendar": {"at": "09:00"}}) == "at 09:00"
    assert when_display({"calendar": {"at": "09:00", "days": ["mon-fri"]}}) == (
        "at 09:00 [mon-fri]"
    )
    assert when_display({"calendar": {"at": "17:30", "days": ["mon", "friL"]}}) == (
        "at 17:30 [mon,friL]"
    )
    assert when_display({"calendar": {"at": "2026-12-24 18:00"}}) == "at 2026-12-24 18:00"
    assert when_display({"on": ["startup", "logon"]}) == "on startup,logon"


async def test_status_shows_the_display_string_and_zone(api_db, api):
    whens = {
        "a": {"per_pc": "once"},
        "b": {"per_pc": {"every": "6h"}},
        "c": {"per_target": "once"},
        "d": {"calendar": {"at": "09:00"}},
        "e": {"calendar": {"at": "09:00", "days": ["mon-fri"]}},
    }
    kv(api_db, "schedules", {k: schedule(k, w, tz="utc") for k, w in whens.items()})
    shown = {}
    for key in whens:
        body = (await api.get(f"/api/schedules/{key}/status")).json()
        assert body["tz"] == "utc"
        shown[key] = body["when"]
    assert shown == {
        "a": "per_pc once",
        "b": "per_pc every 6h",
        "c": "per_target once",
        "d": "at 09:00",
        "e": "at 09:00 [mon-fri]",
    }


# --- preview ---------------------------------------------------------------------


async def test_preview_in_berlin_skips_the_missing_hour_and_fires_once_in_the_doubled_one(
    api_db, api
):
    # Every Sunday 02:30 Berlin: 2027-03-28 has no 02:30 (spring forward) and
    # 2027-10-31 has two (fall back; the earlier, CEST, instant fires).
    when = {"calendar": {"at": "02:30", "days": ["sun"]}}
    kv(api_db, "schedules", {"dst": schedule("dst", when, tz="Europe/Berlin")})
    body = (await api.get("/api/schedules/dst/preview?count=50")).json()
    assert body["id"] == "dst" and body["note"] is None
    fires = body["fires"]
    assert len(fires) == 50
    assert fires[0] == utc(2026, 11, 29, 1, 30)  # CET, +01:00
    spring = fires.index(utc(2027, 3, 21, 1, 30))
    assert fires[spring + 1] == utc(2027, 4, 4, 0, 30)  # 03-28 skipped; CEST, +02:00
    autumn = fires.index(utc(2027, 10, 31, 0, 30))
    assert fires[autumn + 1] == utc(2027, 11, 7, 1, 30)  # one fire, then CET again
    assert utc(2027, 10, 31, 1, 30) not in fires
    assert fires == sorted(fires) and len(set(fires)) == 50
    # count is clamped to 1..50
    assert len((await api.get("/api/schedules/dst/preview?count=0")).json()["fires"]) == 1
    assert len((await api.get("/api/schedules/dst/preview?count=999")).json()["fires"]) == 50
    assert len((await api.get("/api/schedules/dst/preview")).json()["fires"]) == 5


async def test_preview_honours_window_skip_dates_and_active(api_db, api):
    daily = {"calendar": {"at": "09:00"}}
    kv(
        api_db,
        "schedules",
        {
            "skips": schedule(
                "skips",
                daily,
                tz="utc",
                constraints={"window": "08:00-10:00", "skip_dates": ["2026-11-24", "2026-11-26"]},
            ),
            "outside": schedule("outside", daily, tz="utc", constraints={"window": "10:00-12:00"}),
            "wrapped": schedule(
                "wrapped",
                {"calendar": {"at": "01:00"}},
                tz="utc",
                constraints={"window": "22:00-02:00"},
            ),
            "active": schedule(
                "active", daily, tz="utc", active={"from": "2026-12-01", "until": "2026-12-03"}
            ),
            "berlin-skip": schedule(
                "berlin-skip",
                {"calendar": {"at": "00:30"}},
                tz="Europe/Berlin",
                constraints={"skip_dates": ["2026-11-24"]},
            ),
        },
    )

    async def preview(sid: str, count: int = 4) -> dict:
        r = await api.get(f"/api/schedules/{sid}/preview", params={"count": count})
        assert r.status_code == 200
        return r.json()

    assert (await preview("skips"))["fires"] == [
        utc(2026, 11, 23, 9),
        utc(2026, 11, 25, 9),
        utc(2026, 11, 27, 9),
        utc(2026, 11, 28, 9),
    ]
    outside = await preview("outside")
    assert outside["fires"] == [] and "outside window 10:00-12:00" in outside["note"]
    assert (await preview("wrapped", 2))["fires"] == [utc(2026, 11, 23, 1), utc(2026, 11, 24, 1)]
    # active is half-open [from, until): two days, then nothing more to show
    assert (await preview("active"))["fires"] == [utc(2026, 12, 1, 9), utc(2026, 12, 2, 9)]
    # skip_dates are dates in the schedule's zone: 00:30 Berlin on the 24th is 23:30Z the 23rd
    assert (await preview("berlin-skip", 2))["fires"] == [
        utc(2026, 11, 22, 23, 30),
        utc(2026, 11, 24, 23, 30),
    ]


async def test_preview_notes_for_shapes_without_instants(api_db, api):
    at9 = {"calendar": {"at": "09:00"}}
    kv(
        api_db,
        "schedules",
        {
            "poll": schedule("poll", {"per_pc": {"every": "6h"}}),
            "off": schedule("off", at9, tz="utc", enabled=False),
            "agent": schedule("agent", at9, tz="utc", runs_on="agent"),
            "events": schedule("events", {"on": ["logon"]}),
            "xmas": schedule("xmas", {"calendar": {"at": "2026-12-24 18:00"}}, tz="Europe/Berlin"),
            "past": schedule("past", {"calendar": {"at": "2026-01-01 09:00"}}, tz="utc"),
            "bad-skip": schedule(
                "bad-skip", at9, tz="utc", constraints={"skip_dates": ["2026-12-01", "soon"]}
            ),
        },
    )
    got = {}
    for sid in ("poll", "off", "agent", "events", "xmas", "past", "bad-skip"):
        got[sid] = (await api.get(f"/api/schedules/{sid}/preview")).json()
    assert got["poll"] == {
        "id": "poll",
        "fires": [],
        "note": "polls every minute gated by cooldown",
    }
    assert got["off"]["fires"] == [] and got["off"]["note"].startswith("disabled")
    assert got["agent"]["fires"] == [] and "agent" in got["agent"]["note"]
    assert got["events"]["fires"] == [] and "event" in got["events"]["note"]
    assert got["xmas"] == {"id": "xmas", "fires": [utc(2026, 12, 24, 17)], "note": None}
    assert got["past"]["fires"] == [] and "passed" in got["past"]["note"]
    # the scheduler blocks every fire on an unreadable skip date (fail closed)
    assert got["bad-skip"] == {
        "id": "bad-skip",
        "fires": [],
        "note": "never fires: blocked (constraints.skip_dates: bad date 'soon')",
    }


async def test_upcoming_merges_enabled_calendar_schedules_by_instant(api_db, api):
    kv(
        api_db,
        "schedules",
        {
            "morning": schedule("morning", {"calendar": {"at": "09:00"}}, tz="utc"),
            "evening": schedule(
                "evening", {"calendar": {"at": "18:00", "days": ["mon-fri"]}}, tz="Europe/Berlin"
            ),
            "off": schedule("off", {"calendar": {"at": "12:30"}}, tz="utc", enabled=False),
            "poll": schedule("poll", {"per_pc": "once"}),
            "broken": '{"id": "broken"}',
        },
    )
    body = (await api.get("/api/schedules/upcoming?limit=5")).json()
    # NOW is Sunday 2026-11-22 12:00Z; evening runs mon-fri at 17:00Z (CET)
    assert [(u["id"], u["at"]) for u in body] == [
        ("morning", utc(2026, 11, 23, 9)),
        ("evening", utc(2026, 11, 23, 17)),
        ("morning", utc(2026, 11, 24, 9)),
        ("evening", utc(2026, 11, 24, 17)),
        ("morning", utc(2026, 11, 25, 9)),
    ]
    assert body[1] == {
        "id": "evening",
        "job_id": "inv-hw",
        "when": "at 18:00 [mon-fri]",
        "at": utc(2026, 11, 23, 17),
    }
    assert len((await api.get("/api/schedules/upcoming")).json()) == 10
    assert len((await api.get("/api/schedules/upcoming?limit=0")).json()) == 1
    assert len((await api.get("/api/schedules/upcoming?limit=5000")).json()) == 100
    bad = await api.get("/api/schedules/upcoming?limit=soon")
    assert bad.status_code == 400 and bad.json()["parameter"] == "limit"


# --- status ----------------------------------------------------------------------


async def test_status_last_run_and_recent(api_db, api):
    kv(
        api_db,
        "schedules",
        {
            "nightly": schedule("nightly", {"calendar": {"at": "09:00"}}, tz="utc"),
            "poll": schedule("poll", {"per_pc": "once"}, enabled=False),
        },
    )
    seed(api_db, agents, [agent("pc-1"), agent("pc-2")])
    seed(
        api_db,
        execution_results,
        [
            result("r1", "pc-1", 3 * H),  # ok
            result("r2", "pc-2", 2 * H, exit_code=2),  # fail
            result("r3", "pc-1", 30 * H, exit_code=1),  # older than 24 h
            result("r4", "pc-2", H, exit_code=0, job_id="other-job"),  # another job
            # newest: still in flight (no exit, no finish), not counted in recent
            result("r5", "pc-2", 10 * M, exit_code=None, finished_at=None),
        ],
    )
    body = (await api.get("/api/schedules/nightly/status")).json()
    assert body == {
        "id": "nightly",
        "when": "at 09:00",
        "tz": "utc",
        "enabled": True,
        "next_run": utc(2026, 11, 23, 9),
        "last_run": {
            "pc_id": "pc-2",
            "exit_code": None,
            "started_at": shown(11 * M),
            "finished_at": None,
        },
        "recent": {"window_hours": 24, "ok": 1, "fail": 1},
    }
    poll = (await api.get("/api/schedules/poll/status")).json()
    assert (poll["tz"], poll["enabled"], poll["next_run"]) == ("local", False, None)
    assert poll["last_run"]["pc_id"] == "pc-2"  # same job, same results


async def test_status_without_runs(api_db, api):
    kv(api_db, "schedules", {"new": schedule("new", {"per_target": "once"})})
    body = (await api.get("/api/schedules/new/status")).json()
    assert body["last_run"] is None and body["next_run"] is None
    assert body["recent"] == {"window_hours": 24, "ok": 0, "fail": 0}


# --- coverage --------------------------------------------------------------------


async def test_coverage_states_over_the_roster_including_offline_pcs(api_db, api):
    kv(
        api_db,
        "schedules",
        {"lab": schedule("lab", {"per_pc": "once"}, target={"groups": ["lab"], "pcs": ["pc-x"]})},
    )
    lab = {"groups": ["lab"]}
    kv(api_db, "agent_groups", {pc: lab for pc in ("pc-ok", "pc-off", "pc-run", "pc-fail")})
    kv(api_db, "agent_groups_derived", {"pc-new": lab, "pc-tie": lab})
    kv(api_db, "agent_groups", {"pc-other": {"groups": ["office"]}})
    seed(
        api_db,
        agents,
        [
            agent("pc-ok"),
            agent("pc-off", heartbeat_ago=30 * D),  # offline, succeeded
            agent("pc-run"),
            agent("pc-fail"),
            agent("pc-new"),
            agent("pc-tie"),
            agent("pc-other"),  # not in the target
        ],
    )
    seed(
        api_db,
        execution_results,
        [
            result("a1", "pc-ok", 2 * H, version=None),
            result("b1", "pc-off", 20 * D, version="0.9.0"),
            result("c1", "pc-run", 3 * H),
            result("c2", "pc-run", M, exit_code=None, finished_at=None),  # in flight wins
            result("d1", "pc-fail", 5 * H),
            result("d2", "pc-fail", 4 * H, exit_code=3),  # latest finished: fail
            result("d3", "pc-fail", 6 * H),
            # same finish time: result_id decides (t-2 > t-1), whatever the insert order
            result("t-1", "pc-tie", 2 * H, recorded_at=ts(-H)),
            result("t-2", "pc-tie", 2 * H, exit_code=1, recorded_at=ts(-H)),
            result("o1", "pc-other", H),
            result("x1", "pc-ok", 10 * M, exit_code=1, job_id="other-job"),
        ],
    )
    body = (await api.get("/api/schedules/lab/coverage")).json()
    assert body == {
        "id": "lab",
        "when": "per_pc once",
        "job_id": "inv-hw",
        "runs_on": "backend",
        "total": 7,
        "ok": 2,
        "fail": 2,
        "running": 1,
        "pending": 2,
        "agents": [
            {"pc_id": "pc-fail", "state": "fail", "version": "1.0.0", "finished_at": shown(4 * H)},
            {"pc_id": "pc-new", "state": "pending"},
            {"pc_id": "pc-off", "state": "ok", "version": "0.9.0", "finished_at": shown(20 * D)},
            {"pc_id": "pc-ok", "state": "ok", "finished_at": shown(2 * H)},
            {"pc_id": "pc-run", "state": "running"},
            {"pc_id": "pc-tie", "state": "fail", "version": "1.0.0", "finished_at": shown(2 * H)},
            {"pc_id": "pc-x", "state": "pending"},  # listed PC with no agent row
        ],
    }
    summary = (await api.get("/api/schedules/coverage")).json()
    assert summary == [
        {
            "id": "lab",
            "job_id": "inv-hw",
            "total": 7,
            "ok": 2,
            "fail": 2,
            "running": 1,
            "pending": 2,
        }
    ]


async def test_coverage_of_a_large_roster_and_schedules_sharing_a_job(api_db, api):
    """Above 500 PCs the job's rows are read in one pass; the answer is the same."""
    pcs = [f"pc-{i:04d}" for i in range(600)]
    seed(api_db, agents, [agent(pc, heartbeat_ago=(D if i % 3 else M)) for i, pc in enumerate(pcs)])
    rows = [result(f"r-{i}", pc, H, exit_code=i % 4) for i, pc in enumerate(pcs[:100])]
    rows += [result("run", pcs[100], M, exit_code=None, finished_at=None)]
    seed(api_db, execution_results, rows)
    kv(
        api_db,
        "schedules",
        {
            "all": schedule("all", {"per_pc": "once"}),
            "few": schedule("few", {"per_pc": "once"}, target={"pcs": pcs[:8]}),
            "rollout": schedule(
                "rollout",
                {"per_target": "once"},
                target={},
                rollout={"waves": [{"group": "lab", "delay": "0s"}]},
            ),
            "other": schedule("other", {"per_pc": "once"}, job_id="nothing-yet"),
        },
    )
    kv(api_db, "agent_groups", {pc: {"groups": ["lab"]} for pc in pcs[:4]})
    summary = {c["id"]: c for c in (await api.get("/api/schedules/coverage")).json()}
    assert list(summary) == ["all", "few", "other", "rollout"]
    assert summary["all"] == {
        "id": "all",
        "job_id": "inv-hw",
        "total": 600,
        "ok": 25,
        "fail": 75,
        "running": 1,
        "pending": 499,
    }
    assert (summary["few"]["ok"], summary["few"]["fail"], summary["few"]["total"]) == (2, 6, 8)
    assert (summary["rollout"]["total"], summary["rollout"]["ok"]) == (4, 1)
    assert summary["other"]["pending"] == summary["other"]["total"] == 600
    detail = (await api.get("/api/schedules/all/coverage")).json()
    counted = {s: sum(a["state"] == s for a in detail["agents"]) for s in ("ok", "fail")}
    assert counted == {"ok": 25, "fail": 75} and len(detail["agents"]) == 600


# --- fires -----------------------------------------------------------------------


def fire(sid: str, due: timedelta, outcome: str = "skipped", **row) -> dict:
    return {
        "schedule_id": sid,
        "job_id": "inv-hw",
        "due_at": ts(-due),
        "decided_at": ts(-due + 2 * timedelta(seconds=1)),
        "outcome": outcome,
        "last_due_at": ts(-due),
        **row,
    }


async def test_fires_newest_first_with_repeats_and_a_cursor_walk(api_db, api):
    kv(api_db, "schedules", {"s": schedule("s", {"per_pc": "once"})})
    seed(
        api_db,
        schedule_fires,
        [
            fire("s", 5 * H, "fired", exec_id="e-1", target_count=12),
            fire("s", 4 * H, reason="no PC needs a run", last_due_at=ts(-2 * H), repeats=120),
            fire("s", 90 * M, "failed", reason="publish failed: timeout"),
            fire("s", H, "fired", exec_id="e-2", target_count=3),
            fire("s", H, "skipped", reason="max_concurrent reached (4 in flight)"),  # same due
            fire("other", 30 * M, "fired", exec_id="e-3", target_count=1),
        ],
    )
    full = (await api.get("/api/schedules/s/fires")).json()
    assert "X-Next-Cursor" not in (await api.get("/api/schedules/s/fires")).headers
    assert [(f["outcome"], f["due_at"]) for f in full] == [
        ("skipped", shown(H)),  # same due_at: the later decision (higher id) first
        ("fired", shown(H)),
        ("failed", shown(90 * M)),
        ("skipped", shown(4 * H)),
        ("fired", shown(5 * H)),
    ]
    assert full[3] == {
        "due_at": shown(4 * H),
        "last_due_at": shown(2 * H),
        "repeats": 120,
        "decided_at": shown(4 * H - 2 * timedelta(seconds=1)),
        "outcome": "skipped",
        "reason": "no PC needs a run",
        "exec_id": None,
        "target_count": None,
        "job_id": "inv-hw",
    }
    assert (full[4]["exec_id"], full[4]["target_count"], full[4]["reason"]) == ("e-1", 12, None)

    walked, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await api.get("/api/schedules/s/fires", params=params)
        assert r.status_code == 200
        walked += r.json()
        pages += 1
        cursor = r.headers.get("X-Next-Cursor")
        if cursor is None:
            break
    assert walked == full and pages == 3


async def test_fires_of_deleted_known_and_unknown_schedules(api_db, api):
    kv(api_db, "schedules", {"quiet": schedule("quiet", {"per_pc": "once"})})
    seed(api_db, schedule_fires, [fire("gone", H, "fired", exec_id="e-9", target_count=2)])
    gone = await api.get("/api/schedules/gone/fires")
    assert gone.status_code == 200 and gone.json()[0]["exec_id"] == "e-9"
    quiet = await api.get("/api/schedules/quiet/fires")
    assert quiet.status_code == 200 and quiet.json() == []
    unknown = await api.get("/api/schedules/never/fires")
    assert unknown.status_code == 404 and "never" in unknown.json()["error"]


async def test_fires_bad_parameters_are_400(api_db, api):
    kv(api_db, "schedules", {"s": schedule("s", {"per_pc": "once"})})
    for query, name in (
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=x", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=" + encode_cursor(["2026-01-01", "not-an-id"]), "cursor"),
        ("cursor=" + encode_cursor(["2026-01-01"]), "cursor"),
    ):
        r = await api.get(f"/api/schedules/s/fires?{query}")
        assert r.status_code == 400, query
        assert r.json()["parameter"] == name


# --- unknown and invalid ids ----------------------------------------------------


async def test_unknown_and_invalid_schedules_are_404_saying_why(api_db, api):
    kv(
        api_db,
        "schedules",
        {
            "bad-days": schedule("bad-days", {"calendar": {"at": "09:00", "days": "mon-fri"}}),
            "bad-tz": schedule("bad-tz", {"per_pc": "once"}, tz=5),
            "not-json": "{nope",
        },
    )
    for sub in ("status", "coverage", "preview"):
        missing = await api.get(f"/api/schedules/nope/{sub}")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no schedule 'nope'"}
        invalid = await api.get(f"/api/schedules/bad-days/{sub}")
        assert invalid.status_code == 404
        assert "invalid" in invalid.json()["error"]
        assert "when.calendar.days" in invalid.json()["error"]
        for sid in ("bad-tz", "not-json"):
            r = await api.get(f"/api/schedules/{sid}/{sub}")
            assert r.status_code == 404 and "invalid" in r.json()["error"]
    bad = await api.get("/api/schedules/bad-days/preview?count=many")
    assert bad.status_code == 400 and bad.json()["parameter"] == "count"


async def test_local_zone_schedules_have_a_preview(api_db, db_path):
    """``local`` (the default zone) resolves on any host; the instant is an exact minute."""
    kv(api_db, "schedules", {"loc": schedule("loc", {"calendar": {"at": "09:15"}})})
    async with client(db_path) as c:
        body = (await c.get("/api/schedules/loc/preview?count=3")).json()
    instants = [datetime.fromisoformat(f.replace("Z", "+00:00")) for f in body["fires"]]
    assert len(instants) == 3 and all(NOW < t for t in instants)
    assert all(t.second == 0 and t.microsecond == 0 for t in instants)
    assert instants[1] - instants[0] in (D - H, D, D + H)
