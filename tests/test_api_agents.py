"""``/api/agents``, ``/api/agents/versions`` and ``/api/agents/{pc_id}`` (api.md §3.3)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from api_harness import seed, ts
from sqlalchemy import event, insert

from apiserver.agent_rows import COLUMNS, agent_row, json_strings
from apiserver.params import ParamError
from apiserver.routes.agents import CANDIDATES, META_LATER, SORT_SPELLINGS, check_meta_params
from projectord.schema import agents

S = timedelta(seconds=1)
M = timedelta(minutes=1)
ONLINE_AGO = -30 * S  # a heartbeat well inside the 2-minute window
OFFLINE_AGO = -10 * M


def agent(pc_id: str, updated_min: float = 1, **columns: Any) -> dict[str, Any]:
    """An online agent row updated ``updated_min`` minutes ago; ``columns`` override."""
    row: dict[str, Any] = {
        "pc_id": pc_id,
        "hostname": f"host-{pc_id.lower()}",
        "last_heartbeat": ts(ONLINE_AGO),
        "agent_version": "0.43.1",
        "os_family": "windows",
        "updated_at": ts(-updated_min * M),
    }
    row.update(columns)
    return row


def wire(stored: str | None) -> str | None:
    return None if stored is None else stored.replace("+00:00", "Z")


def ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [row["pc_id"] for row in r.json()]


def expected_order(rows: list[dict[str, Any]], column: str, descending: bool) -> list[str]:
    """The API's order computed from seeded rows: NULLs (and "" logon users) last,
    then the column in its direction, ties by pc_id in the same direction."""

    def value(r: dict[str, Any]) -> Any:
        v = r.get(column)
        return None if column == "last_logon_user" and v == "" else v

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=lambda r: (value(r), r["pc_id"]), reverse=descending)
    missing.sort(key=lambda r: r["pc_id"], reverse=descending)
    return [r["pc_id"] for r in present + missing]


def assert_bad(r: Any, parameter: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["parameter"] == parameter
    return body


# --- rows -------------------------------------------------------------------------------


FULL = agent(
    "PC-FULL",
    hostname="WS-01",
    last_heartbeat=ts(-45 * S),
    agent_version="0.43.2",
    os_family="linux",
    updated_at=ts(-2 * M),
    agent_cpu_pct=1.25,
    agent_rss_bytes=52_428_800,
    agent_disk_read_bytes=1024,
    agent_disk_written_bytes=2048,
    quarantined_versions=json.dumps(["0.41.0", "0.42.0"]),
    last_logon_user="CORP\\taro",
    last_logon_display_name="Taro Yamada",
    command_keys=json.dumps(["k1", "k2"]),
    enforcing=1,
    nats_user="agent-ws-01",
    nats_user_since=ts(-3 * M),
)
BARE = {"pc_id": "PC-BARE", "updated_at": ts(-5 * M)}


async def test_detail_shapes_every_reported_column(api_db, api):
    seed(api_db, agents, [FULL])
    r = await api.get("/api/agents/PC-FULL")
    assert r.status_code == 200
    assert r.json() == {
        "pc_id": "PC-FULL",
        "hostname": FULL["hostname"],
        "os_family": FULL["os_family"],
        "agent_version": FULL["agent_version"],
        "last_heartbeat": wire(FULL["last_heartbeat"]),
        "updated_at": wire(FULL["updated_at"]),
        "agent_cpu_pct": FULL["agent_cpu_pct"],
        "agent_rss_bytes": FULL["agent_rss_bytes"],
        "agent_disk_read_bytes": FULL["agent_disk_read_bytes"],
        "agent_disk_written_bytes": FULL["agent_disk_written_bytes"],
        "quarantined_versions": json.loads(FULL["quarantined_versions"]),
        "last_logon_user": FULL["last_logon_user"],
        "last_logon_display_name": FULL["last_logon_display_name"],
        "command_keys": json.loads(FULL["command_keys"]),
        "enforcing": True,
        "nats_user": FULL["nats_user"],
        "nats_user_since": wire(FULL["nats_user_since"]),
    }
    assert list(r.json())[:3] == ["pc_id", "hostname", "os_family"]


async def test_detail_omits_what_was_never_reported(api_db, api):
    seed(api_db, agents, [BARE])
    body = (await api.get("/api/agents/PC-BARE")).json()
    assert body == {
        "pc_id": "PC-BARE",
        "hostname": None,
        "os_family": None,
        "agent_version": None,
        "last_heartbeat": None,
        "updated_at": wire(BARE["updated_at"]),
        "agent_cpu_pct": None,
        "agent_rss_bytes": None,
        "agent_disk_read_bytes": None,
        "agent_disk_written_bytes": None,
        "last_logon_user": None,
        "last_logon_display_name": None,
    }


async def test_empty_values_follow_the_row_rules(api_db, api):
    seed(
        api_db,
        agents,
        [
            agent(
                "PC-E",
                quarantined_versions="[]",
                last_logon_user="",
                last_logon_display_name="",
                command_keys="[]",
                enforcing=0,
                nats_user="",
                nats_user_since="",
            )
        ],
    )
    body = (await api.get("/api/agents/PC-E")).json()
    assert "quarantined_versions" not in body  # empty list: omitted
    assert body["command_keys"] == []  # reported empty: kept
    assert body["enforcing"] is False
    assert body["last_logon_user"] is None and body["last_logon_display_name"] is None
    assert "nats_user" not in body and "nats_user_since" not in body
    assert "meta" not in body
    listed = (await api.get("/api/agents")).json()
    assert listed == [body]


def test_agent_row_tolerates_bad_stored_json_and_infinities():
    row = {
        **{c.name: None for c in COLUMNS},
        "pc_id": "PC-X",
        "updated_at": ts(),
        "agent_cpu_pct": float("inf"),
        "quarantined_versions": "not json",
        "command_keys": json.dumps({"k": 1}),
    }
    shaped = agent_row(row)
    assert shaped["agent_cpu_pct"] is None
    assert "quarantined_versions" not in shaped and "command_keys" not in shaped
    assert json_strings(json.dumps(["a", 1, "b"])) == ["a", "b"]
    assert json_strings(None) is None and json_strings("[]") == []


async def test_unknown_agent_is_404(api_db, api):
    seed(api_db, agents, [FULL])
    r = await api.get("/api/agents/PC-NOPE")
    assert r.status_code == 404
    assert "PC-NOPE" in r.json()["error"]
    assert (await api.get("/api/agents/pc-full")).status_code == 404  # ids are exact


async def test_detail_of_a_pc_id_with_spaces_and_unicode(api_db, api):
    seed(api_db, agents, [agent("PC é 1")])
    r = await api.get("/api/agents/PC%20%C3%A9%201")
    assert r.status_code == 200 and r.json()["pc_id"] == "PC é 1"


# --- sorting -------------------------------------------------------------------------


SORT_ROWS = [
    agent(
        "PC-A",
        3,
        hostname="beta",
        os_family="windows",
        agent_version="0.43.1",
        last_heartbeat=ts(-1 * M),
        last_logon_user="CORP\\b",
    ),
    agent(
        "PC-B",
        1,
        hostname=None,
        os_family=None,
        agent_version=None,
        last_heartbeat=None,
        last_logon_user=None,
    ),
    agent(
        "PC-C",
        3,
        hostname="alpha",
        os_family="linux",
        agent_version="0.42.7",
        last_heartbeat=ts(-5 * M),
        last_logon_user="",
    ),
    agent(
        "PC-D",
        2,
        hostname="beta",
        os_family="windows",
        agent_version="0.43.1",
        last_heartbeat=ts(-1 * M),
        last_logon_user="CORP\\a",
    ),
    agent(
        "PC-E",
        5,
        hostname="Gamma",
        os_family="linux",
        agent_version="0.43.0",
        last_heartbeat=ts(-3 * S),
        last_logon_user="CORP\\b",
    ),
]


async def test_default_order_is_updated_at_desc_then_pc_id(api_db, api):
    seed(api_db, agents, SORT_ROWS)
    want = expected_order(SORT_ROWS, "updated_at", descending=True)
    assert want[:3] == ["PC-B", "PC-D", "PC-C"]  # PC-A and PC-C tie: pc_id desc
    assert ids(await api.get("/api/agents")) == want
    assert ids(await api.get("/api/agents?sort=updated_at")) == want
    assert ids(await api.get("/api/agents?sort=updated_at&dir=asc")) == want[::-1]


@pytest.mark.parametrize("spelling", sorted(SORT_SPELLINGS))
async def test_every_sort_key_and_alias(api_db, api, spelling):
    seed(api_db, agents, SORT_ROWS)
    column = SORT_SPELLINGS[spelling]
    default_desc = column == "updated_at"
    got = ids(await api.get(f"/api/agents?sort={spelling}"))
    assert got == expected_order(SORT_ROWS, column, descending=default_desc)
    for direction in ("asc", "desc"):
        got = ids(await api.get(f"/api/agents?sort={spelling}&dir={direction}"))
        assert got == expected_order(SORT_ROWS, column, descending=direction == "desc")


async def test_nulls_come_last_in_both_directions(api_db, api):
    seed(api_db, agents, SORT_ROWS)
    for direction in ("asc", "desc"):
        assert ids(await api.get(f"/api/agents?sort=hostname&dir={direction}"))[-1] == "PC-B"
        got = ids(await api.get(f"/api/agents?sort=last_logon&dir={direction}"))
        # NULL and "" (shown as null) both last; among them pc_id in the direction.
        assert got[-2:] == (["PC-B", "PC-C"] if direction == "asc" else ["PC-C", "PC-B"])


async def test_bad_sort_and_dir_are_400(api_db, api):
    for value in ("nope", "PC_ID", "meta", "meta:"):
        assert_bad(await api.get("/api/agents", params={"sort": value}), "sort")
    body = assert_bad(await api.get("/api/agents?sort=meta:dept"), "sort")
    assert "agent_meta" in body["expected"]
    body = assert_bad(await api.get("/api/agents", params={"sort": "meta: "}), "sort")
    assert "non-empty key" in body["expected"]
    for value in ("up", "ASC", "descending"):
        assert_bad(await api.get("/api/agents", params={"dir": value}), "dir")


# --- filters --------------------------------------------------------------------------


async def test_status_follows_the_two_minute_rule(api_db, api):
    rows = [
        agent("PC-EDGE", last_heartbeat=ts(-2 * M)),  # exactly now - 2 min: online
        agent("PC-JUST-OUT", last_heartbeat=ts(-2 * M - timedelta(microseconds=1))),
        agent("PC-NEVER", last_heartbeat=None),
        agent("PC-FRESH", last_heartbeat=ts(-1 * S)),
        agent("PC-AHEAD", last_heartbeat=ts(5 * S)),  # agent clock ahead: still online
    ]
    seed(api_db, agents, rows)
    online = set(ids(await api.get("/api/agents?status=online")))
    offline = set(ids(await api.get("/api/agents?status=offline")))
    assert online == {"PC-EDGE", "PC-FRESH", "PC-AHEAD"}
    assert offline == {"PC-JUST-OUT", "PC-NEVER"}
    assert len(ids(await api.get("/api/agents?status="))) == len(rows)  # blank: no filter


async def test_bad_status_is_400(api_db, api):
    for value in ("up", "Online", "all"):
        body = assert_bad(await api.get("/api/agents", params={"status": value}), "status")
        assert "'online'" in body["expected"] and "'offline'" in body["expected"]


REGEX_ROWS = [
    agent(
        "PC-01",
        1,
        hostname="ws-sales-01",
        last_logon_user="CORP\\taro",
        last_logon_display_name="Taro Yamada",
        agent_version="0.43.1",
    ),
    agent(
        "PC-02",
        2,
        hostname="ws-dev-02",
        last_logon_user="CORP\\hanako",
        last_logon_display_name=None,
        agent_version="0.42.7",
    ),
    agent(
        "LAB-03",
        3,
        hostname=None,
        last_logon_user="",
        last_logon_display_name="Jiro Sato",
        agent_version=None,
        last_heartbeat=ts(OFFLINE_AGO),
    ),
    agent(
        "PC-04",
        4,
        hostname="lab-printer",
        last_logon_user=None,
        agent_version="",
        last_heartbeat=ts(OFFLINE_AGO),
    ),
]


@pytest.mark.parametrize(
    ("params", "want"),
    [
        ({"q": "sales"}, ["PC-01"]),  # hostname
        ({"q": "^PC-0[12]$"}, ["PC-01", "PC-02"]),  # pc_id, unanchored otherwise
        ({"q": "(?i)LAB"}, ["LAB-03", "PC-04"]),  # pc_id of one, hostname of the other
        ({"q": "^$"}, ["LAB-03"]),  # a NULL hostname matches as ""
        ({"q": "   "}, ["PC-01", "PC-02", "LAB-03", "PC-04"]),  # blank: no filter
        ({"user": "taro"}, ["PC-01"]),
        ({"user": "Sato"}, ["LAB-03"]),  # the display name
        ({"user": r"CORP\\"}, ["PC-01", "PC-02"]),
        ({"user": "^$"}, ["PC-02", "LAB-03", "PC-04"]),  # either column NULL or empty
        ({"version": r"^0\.43"}, ["PC-01"]),
        ({"version": "^$"}, ["LAB-03", "PC-04"]),  # NULL and ""
        ({"q": "^PC", "user": "CORP", "version": "0.42"}, ["PC-02"]),  # ANDed
        ({"q": "(?i)lab", "status": "offline"}, ["LAB-03", "PC-04"]),
        ({"q": "(?i)lab", "status": "online"}, []),
    ],
)
async def test_regex_filters(api_db, api, params, want):
    seed(api_db, agents, REGEX_ROWS)
    assert ids(await api.get("/api/agents", params=params)) == want


async def test_invalid_regex_is_400_naming_the_parameter(api_db, api):
    for name in ("q", "user", "version"):
        for bad in ("(", "a{2,1}", "(?=x)"):
            body = assert_bad(await api.get("/api/agents", params={name: bad}), name)
            assert "regular expression" in body["expected"]


async def test_quarantined_matches_an_exact_version_token(api_db, api):
    rows = [
        agent("PC-1", quarantined_versions=json.dumps(["0.41.0", "0.42.0"])),
        agent("PC-2", quarantined_versions=json.dumps(["0.41.0-rc1"])),
        agent("PC-3", quarantined_versions=None),
        agent("PC-4", quarantined_versions="not json"),
        agent("PC-5", quarantined_versions=json.dumps(["0.42.0"])),
    ]
    seed(api_db, agents, rows)
    for version in ("0.41.0", "0.42.0", "0.41.0-rc1", "0.41", "not json"):
        want = [
            r["pc_id"]
            for r in sorted(rows, key=lambda r: (r["updated_at"], r["pc_id"]), reverse=True)
            if version in (json_strings(r["quarantined_versions"]) or [])
        ]
        got = await api.get("/api/agents", params={"quarantined": version, "limit": 10})
        assert ids(got) == want, version
        assert got.headers["X-Total-Count"] == str(len(want))


async def test_quarantined_combines_with_regex_and_status(api_db, api):
    rows = [
        agent("PC-1", 1, quarantined_versions=json.dumps(["0.41.0"]), hostname="alpha"),
        agent("PC-2", 2, quarantined_versions=json.dumps(["0.41.0"]), hostname="beta"),
        agent(
            "PC-3",
            3,
            quarantined_versions=json.dumps(["0.41.0"]),
            hostname="alpha-2",
            last_heartbeat=ts(OFFLINE_AGO),
        ),
        agent("PC-4", 4, hostname="alpha-3"),
    ]
    seed(api_db, agents, rows)
    r = await api.get("/api/agents?quarantined=0.41.0&q=alpha&limit=5")
    assert ids(r) == ["PC-1", "PC-3"]
    assert (r.headers["X-Online-Count"], r.headers["X-Offline-Count"]) == ("1", "1")
    r = await api.get("/api/agents?quarantined=0.41.0&status=offline")
    assert ids(r) == ["PC-3"]


# --- paging and count headers ------------------------------------------------------------


def fleet(n_online: int, n_offline: int) -> list[dict[str, Any]]:
    """Agents updated one minute apart, the first ``n_online`` online."""
    return [
        agent(
            f"PC-{i:03d}",
            i + 1,
            last_heartbeat=ts(ONLINE_AGO if i < n_online else OFFLINE_AGO),
            hostname=f"host-{'even' if i % 2 == 0 else 'odd'}-{i}",
        )
        for i in range(n_online + n_offline)
    ]


async def test_limit_offset_and_headers_with_limit(api_db, api):
    rows = fleet(5, 3)
    seed(api_db, agents, rows)
    order = expected_order(rows, "updated_at", descending=True)
    r = await api.get("/api/agents?limit=3&offset=2")
    assert ids(r) == order[2:5]
    assert r.headers["X-Total-Count"] == "8"
    assert (r.headers["X-Online-Count"], r.headers["X-Offline-Count"]) == ("5", "3")
    r = await api.get("/api/agents?limit=0")
    assert ids(r) == [] and r.headers["X-Total-Count"] == "8"
    r = await api.get("/api/agents?limit=50&offset=100")
    assert ids(r) == [] and r.headers["X-Total-Count"] == "8"


async def test_status_changes_the_total_but_not_the_chips(api_db, api):
    seed(api_db, agents, fleet(5, 3))
    for status, total in (("online", "5"), ("offline", "3")):
        r = await api.get(f"/api/agents?limit=2&status={status}")
        assert len(ids(r)) == 2
        assert r.headers["X-Total-Count"] == total
        assert (r.headers["X-Online-Count"], r.headers["X-Offline-Count"]) == ("5", "3")


async def test_headers_without_limit(api_db, api):
    seed(api_db, agents, fleet(5, 3))
    r = await api.get("/api/agents")
    assert len(ids(r)) == 8 and r.headers["X-Total-Count"] == "8"
    assert "X-Online-Count" not in r.headers and "X-Offline-Count" not in r.headers
    r = await api.get("/api/agents?offset=6")
    assert len(ids(r)) == 2 and r.headers["X-Total-Count"] == "8"  # offset + rows
    r = await api.get("/api/agents?offset=20")
    assert ids(r) == [] and r.headers["X-Total-Count"] == "20"
    r = await api.get("/api/agents?status=online&offset=1")
    assert len(ids(r)) == 4 and r.headers["X-Total-Count"] == "5"
    r = await api.get("/api/agents?q=odd&offset=1")
    assert len(ids(r)) == 3 and r.headers["X-Total-Count"] == "4"
    assert "X-Online-Count" not in r.headers


async def test_headers_with_a_regex(api_db, api):
    rows = fleet(5, 3)  # odd hostnames: 1, 3 online; 5, 7 offline
    seed(api_db, agents, rows)
    odd = [pc for pc in expected_order(rows, "updated_at", True) if int(pc[-3:]) % 2]
    r = await api.get("/api/agents?q=odd&limit=1&offset=1")
    assert ids(r) == odd[1:2]
    assert r.headers["X-Total-Count"] == "4"
    assert (r.headers["X-Online-Count"], r.headers["X-Offline-Count"]) == ("2", "2")
    r = await api.get("/api/agents?q=odd&limit=10&status=online")
    assert ids(r) == [pc for pc in odd if int(pc[-3:]) < 5]
    assert r.headers["X-Total-Count"] == "2"
    assert (r.headers["X-Online-Count"], r.headers["X-Offline-Count"]) == ("2", "2")
    r = await api.get("/api/agents?q=odd&limit=10&status=offline&dir=asc")
    assert ids(r) == [pc for pc in odd if int(pc[-3:]) >= 5][::-1]
    assert r.headers["X-Total-Count"] == "2"


async def test_regex_filters_examine_at_most_the_first_candidates(api_db, api):
    # CANDIDATES filler rows updated newest, then 3 "needle" rows past the window.
    filler = [
        {"pc_id": f"F-{i:05d}", "hostname": "filler", "updated_at": ts(-i * S)}
        for i in range(CANDIDATES)
    ]
    needles = [
        {"pc_id": f"N-{i}", "hostname": "needle", "updated_at": ts(-(CANDIDATES + 10 + i) * S)}
        for i in range(3)
    ]
    with api_db.begin() as conn:
        conn.execute(insert(agents), filler + needles)
    r = await api.get("/api/agents?q=needle&limit=10")
    assert ids(r) == [] and r.headers["X-Total-Count"] == "0"
    # In the other direction the needles come first in the window.
    r = await api.get("/api/agents?q=needle&limit=10&dir=asc")
    assert ids(r) == ["N-2", "N-1", "N-0"] and r.headers["X-Total-Count"] == "3"
    # Without a regex SQL counts everything.
    r = await api.get("/api/agents?limit=1")
    assert r.headers["X-Total-Count"] == str(CANDIDATES + 3)
    # Without a limit the whole window's matches come back in order.
    r = await api.get("/api/agents?q=filler&offset=9990")
    assert len(ids(r)) == 10 and r.headers["X-Total-Count"] == str(CANDIDATES)


async def test_bad_limit_and_offset_are_400(api_db, api):
    for name in ("limit", "offset"):
        for value in ("-1", "ten", "1.5", "9" * 19):
            assert_bad(await api.get("/api/agents", params={name: value}), name)


# --- agent metadata (later phase) ------------------------------------------------------


@pytest.mark.parametrize("name", ["meta_key", "meta_value", "meta_any"])
async def test_legacy_meta_params_are_refused(api_db, api, name):
    body = assert_bad(await api.get("/api/agents", params={name: "dept"}), name)
    assert body["expected"] == META_LATER
    assert ids(await api.get("/api/agents", params={name: ""})) == []  # blank: absent


async def test_meta_filters_are_refused_naming_the_parameter(api_db, api):
    seed(api_db, agents, [FULL])
    body = assert_bad(await api.get("/api/agents?meta.dept.eq=sales"), "meta.dept.eq")
    assert body["expected"] == META_LATER
    # Split on the last dot: the key may hold dots.
    assert_bad(await api.get("/api/agents?meta.a.b.set="), "meta.a.b.set")
    body = assert_bad(await api.get("/api/agents?meta.dept.like=x"), "meta.dept.like")
    assert "'contains'" in body["expected"]
    assert_bad(await api.get("/api/agents?meta.dept=x"), "meta.dept")
    assert_bad(await api.get("/api/agents?meta..eq=x"), "meta..eq")
    # A value op with a blank value is ignored, as the contract says.
    assert ids(await api.get("/api/agents?meta.dept.contains=&meta.site.eq=%20")) == ["PC-FULL"]


def test_check_meta_params_ops():
    check_meta_params([("q", "x"), ("metadata", "x"), ("meta.k.starts", "")])
    for op in ("empty", "set", "absent"):
        with pytest.raises(ParamError) as caught:
            check_meta_params([(f"meta.k.{op}", "")])
        assert caught.value.name == f"meta.k.{op}"


# --- versions ---------------------------------------------------------------------------


async def test_versions_count_agents_and_online_ones(api_db, api):
    rows = [
        agent("PC-1", agent_version="0.43.1"),
        agent("PC-2", agent_version="0.43.1", last_heartbeat=ts(OFFLINE_AGO)),
        agent("PC-3", agent_version="0.42.7"),
        agent("PC-4", agent_version="0.42.7", last_heartbeat=None),
        agent("PC-5", agent_version=None),
        agent("PC-6", agent_version=""),
        agent("PC-7", agent_version="0.40.0", last_heartbeat=ts(OFFLINE_AGO)),
        agent("PC-8", agent_version="0.41.0"),
    ]
    seed(api_db, agents, rows)
    want: dict[str | None, dict[str, int]] = {}
    for r in rows:
        counts = want.setdefault(r["agent_version"] or None, {"total": 0, "active": 0})
        counts["total"] += 1
        counts["active"] += r["last_heartbeat"] is not None and r["last_heartbeat"] >= ts(-2 * M)
    ordered = sorted(want.items(), key=lambda kv: (-kv[1]["total"], kv[0] or ""))
    r = await api.get("/api/agents/versions")
    assert r.status_code == 200
    assert r.json() == [{"version": v, **c} for v, c in ordered]
    assert [v["version"] for v in r.json()] == [None, "0.42.7", "0.43.1", "0.40.0", "0.41.0"]


async def test_versions_of_an_empty_fleet(api_db, api):
    r = await api.get("/api/agents/versions")
    assert r.status_code == 200 and r.json() == []


# --- OpenAPI ---------------------------------------------------------------------------


async def test_openapi_declares_the_parameters_and_headers(api_db, api):
    doc = (await api.get("/api/openapi.json")).json()
    op = doc["paths"]["/api/agents"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"q", "user", "version", "quarantined", "status", "limit", "offset", "sort"} <= names
    assert {"dir", "meta_key", "meta_value", "meta_any"} <= names
    assert set(op["responses"]["200"]["headers"]) == {
        "X-Total-Count",
        "X-Online-Count",
        "X-Offline-Count",
    }
    assert "404" in doc["paths"]["/api/agents/{pc_id}"]["get"]["responses"]


@pytest.mark.parametrize(
    ("status", "online", "index"),
    [
        # Few rows of the asked status: read them from the heartbeat index.
        ("online", 3, "SEARCH agents USING INDEX idx_agents_heartbeat"),
        ("offline", 397, "SEARCH agents USING INDEX idx_agents_heartbeat"),
        # Many: walk the list order and stop after a page.
        ("online", 397, "SCAN agents USING INDEX idx_agents_updated"),
        ("offline", 3, "SCAN agents USING INDEX idx_agents_updated"),
    ],
)
async def test_a_status_filter_reads_a_rare_status_from_the_heartbeat_index(
    api_db, api, db_path, status, online, index
):
    beats = {True: ts(ONLINE_AGO), False: ts(OFFLINE_AGO)}
    rows = [agent(f"PC-{i:03d}", i, last_heartbeat=beats[i < online]) for i in range(400)]
    seed(api_db, agents, rows)
    statements: list[str] = []
    db = api._transport.app.state.db
    for engine in (db.inline_engine, db.engine):
        event.listen(engine, "connect", lambda conn, _: conn.set_trace_callback(statements.append))

    r = await api.get(f"/api/agents?limit=20&status={status}")

    wanted = [row for row in rows if (row["last_heartbeat"] == beats[True]) == (status == "online")]
    assert ids(r) == expected_order(wanted, "updated_at", True)[:20]
    page = next(sql for sql in statements if "LIMIT" in sql)
    with sqlite3.connect(db_path) as conn:
        plan = " | ".join(step[3] for step in conn.execute("EXPLAIN QUERY PLAN " + page))
    assert index in plan, plan
