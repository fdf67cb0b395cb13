"""Core-NATS projectors: heartbeat, host_perf, process_perf (projection-semantics.md 7.3-7.5).

Core NATS has no replay, so a message published before projectord subscribed is
gone; every test first waits until probes are projected (``core_warmup``).
Probe rows use pc ids starting with ``warm-``/``sync`` and are ignored.
"""

from __future__ import annotations

import itertools
import json

from harness import query, wait_until
from wire import body, db_ts, heartbeat, host_perf, process_perf, ts

from projectord.timestamps import now_db

_probe = itertools.count()


async def core_warmup(nc, db_path):
    """Publish distinct probes on every core subject until each one is projected."""
    probes = {
        "heartbeat": ("agents", lambda pc: heartbeat(pc, at=-1000)),
        "host_perf": ("host_perf_samples", lambda pc: host_perf(pc, at=-1000)),
        "process_perf": (
            "process_perf_samples",
            lambda pc: process_perf(
                pc, at=-1000, processes=[{"pid": 1, "name": "p", "cpu_pct": 0.0, "rss_bytes": 1}]
            ),
        ),
    }
    for subject, (table, make) in probes.items():

        async def landed(subject=subject, table=table, make=make):
            pc = f"warm-{next(_probe)}"
            await nc.publish(f"{subject}.{pc}", body(make(pc)))
            await nc.flush()
            rows = query(db_path, f"SELECT COUNT(*) FROM {table} WHERE pc_id LIKE 'warm-%'")
            return rows[0][0] > 0

        await wait_until(landed, timeout=20, interval=0.05)


AGENT_COLUMNS = (
    "hostname",
    "os_family",
    "agent_version",
    "last_heartbeat",
    "agent_cpu_pct",
    "agent_rss_bytes",
    "agent_disk_read_bytes",
    "agent_disk_written_bytes",
    "quarantined_versions",
    "last_logon_user",
    "last_logon_display_name",
    "command_keys",
    "enforcing",
    "command_protocols",
)
JSON_COLUMNS = ("quarantined_versions", "command_keys", "command_protocols")


def agent_raw(db_path, pc_id):
    rows = query(
        db_path,
        f"SELECT {', '.join(AGENT_COLUMNS)}, updated_at FROM agents WHERE pc_id = ?",
        [pc_id],
    )
    return dict(zip((*AGENT_COLUMNS, "updated_at"), rows[0], strict=True)) if rows else None


def agent(db_path, pc_id):
    """The agents row with JSON array columns parsed (NULL stays None)."""
    raw = agent_raw(db_path, pc_id)
    if raw is None:
        return None
    raw.pop("updated_at")
    for col in JSON_COLUMNS:
        if raw[col] is not None:
            raw[col] = json.loads(raw[col])
    return raw


def heartbeat_at(db_path, pc_id, at):
    rows = query(db_path, "SELECT last_heartbeat FROM agents WHERE pc_id = ?", [pc_id])
    return bool(rows) and rows[0][0] == db_ts(at)


# One PC's heartbeats and the agents row each must leave behind when applied in turn.
STEPS = [
    # A bare heartbeat: nothing reported yet.
    heartbeat(at=0),
    # A full periodic heartbeat.
    heartbeat(
        at=10,
        agent_version="0.43.30",
        hostname="WS-001",
        os_family="windows",
        agent_cpu_pct=1.5,
        agent_rss_bytes=104_857_600,
        agent_disk_read_bytes=10,
        agent_disk_written_bytes=20,
        quarantined_versions=["0.43.1"],
        last_logon_user="CORP\\alice",
        last_logon_display_name="Alice A",
        command_keys=["k1:fp1"],
        enforcing=True,
        command_protocols=["legacy", "kanade.command.v2"],
    ),
    # A ping reply: other identity (ignored, sticky), no metrics, a display name
    # without a user (ignored), reported-or-not fields absent (kept).
    heartbeat(
        at=20,
        agent_version="0.43.31",
        hostname="WS-RENAMED",
        os_family="linux",
        last_logon_display_name="Bob",
    ),
    # Empty values: '' user is stored raw, [] quarantine is NULL, [] keys is a value.
    heartbeat(
        at=30,
        agent_cpu_pct=2.0,
        quarantined_versions=[],
        last_logon_user="",
        command_keys=[],
        enforcing=False,
        command_protocols=[],
    ),
    heartbeat(
        at=40,
        agent_version="0.43.32",
        agent_rss_bytes=5,
        last_logon_user="CORP\\bob",
        last_logon_display_name="Bob B",
        command_keys=["k2:fp2", "k3:fp3"],
        quarantined_versions=["0.43.2", "0.43.3"],
    ),
]

_NOTHING = dict.fromkeys(AGENT_COLUMNS)
EXPECTED = [
    {**_NOTHING, "agent_version": "0.43.29", "last_heartbeat": db_ts(0)},
    {
        "hostname": "WS-001",
        "os_family": "windows",
        "agent_version": "0.43.30",
        "last_heartbeat": db_ts(10),
        "agent_cpu_pct": 1.5,
        "agent_rss_bytes": 104_857_600,
        "agent_disk_read_bytes": 10,
        "agent_disk_written_bytes": 20,
        "quarantined_versions": ["0.43.1"],
        "last_logon_user": "CORP\\alice",
        "last_logon_display_name": "Alice A",
        "command_keys": ["k1:fp1"],
        "enforcing": 1,
        "command_protocols": ["legacy", "kanade.command.v2"],
    },
    {
        "hostname": "WS-001",
        "os_family": "windows",
        "agent_version": "0.43.31",
        "last_heartbeat": db_ts(20),
        "agent_cpu_pct": None,
        "agent_rss_bytes": None,
        "agent_disk_read_bytes": None,
        "agent_disk_written_bytes": None,
        "quarantined_versions": None,
        "last_logon_user": "CORP\\alice",
        "last_logon_display_name": "Alice A",
        "command_keys": ["k1:fp1"],
        "enforcing": 1,
        "command_protocols": ["legacy", "kanade.command.v2"],
    },
    {
        "hostname": "WS-001",
        "os_family": "windows",
        "agent_version": "0.43.29",
        "last_heartbeat": db_ts(30),
        "agent_cpu_pct": 2.0,
        "agent_rss_bytes": None,
        "agent_disk_read_bytes": None,
        "agent_disk_written_bytes": None,
        "quarantined_versions": None,
        "last_logon_user": "",
        "last_logon_display_name": None,
        "command_keys": [],
        "enforcing": 0,
        "command_protocols": [],
    },
    {
        "hostname": "WS-001",
        "os_family": "windows",
        "agent_version": "0.43.32",
        "last_heartbeat": db_ts(40),
        "agent_cpu_pct": None,
        "agent_rss_bytes": 5,
        "agent_disk_read_bytes": None,
        "agent_disk_written_bytes": None,
        "quarantined_versions": ["0.43.2", "0.43.3"],
        "last_logon_user": "CORP\\bob",
        "last_logon_display_name": "Bob B",
        "command_keys": ["k2:fp2", "k3:fp3"],
        "enforcing": 0,
        "command_protocols": [],
    },
]


def step_for(pc_id, n):
    return {**STEPS[n], "pc_id": pc_id}


# --- heartbeat ----------------------------------------------------------------------


async def test_heartbeat_rules_across_flushes(projectord_factory, nc, db_path):
    await projectord_factory(flush_interval_ms=50)
    await core_warmup(nc, db_path)
    pc = "PC-SEQ"
    for n, expected in enumerate(EXPECTED):
        before = now_db()
        await nc.publish(f"heartbeat.{pc}", body(step_for(pc, n)))
        await wait_until(lambda n=n: heartbeat_at(db_path, pc, n * 10))
        assert agent(db_path, pc) == expected, f"after heartbeat {n}"
        raw = agent_raw(db_path, pc)
        assert raw["updated_at"] >= before, "updated_at is the server time of the flush"
        assert len(raw["updated_at"]) == len(before) and raw["updated_at"].endswith("+00:00")
        if n == 3:
            assert raw["command_keys"] == "[]", "[] is a value, distinct from never reported"
            assert raw["quarantined_versions"] is None, "an empty quarantine list is NULL"


async def sync_heartbeat_buffer(nc, db_path):
    """Leave the heartbeat buffer empty (with flush_max=2 and no timed flush).

    At rest the buffer holds at most one PC. Two heartbeats of ``sync`` put
    exactly ``sync`` in it whatever was there; ``sync2`` then forces the flush.
    """
    mark = 5000 + next(_probe)
    await nc.publish("heartbeat.sync", body(heartbeat("sync", at=mark - 0.5)))
    await nc.publish("heartbeat.sync", body(heartbeat("sync", at=mark)))
    await nc.publish("heartbeat.sync2", body(heartbeat("sync2", at=mark)))
    await wait_until(lambda: heartbeat_at(db_path, "sync2", mark))
    assert heartbeat_at(db_path, "sync", mark)


async def publish_window(nc, db_path, pc, steps):
    """Publish ``steps`` of ``pc`` back to back; a second PC then fills and flushes the buffer."""
    for n in steps:
        await nc.publish(f"heartbeat.{pc}", body(step_for(pc, n)))
    mark = 9000 + next(_probe)
    await nc.publish("heartbeat.sync", body(heartbeat("sync", at=mark)))
    await wait_until(lambda: heartbeat_at(db_path, "sync", mark))


async def test_heartbeat_rules_within_one_buffer_window(projectord_factory, nc, db_path):
    # No timed flush: only a buffer holding two PCs is flushed, so every heartbeat
    # of one PC published before the second PC's lands in the same window.
    await projectord_factory(flush_interval_ms=60000, flush_max=2)
    await core_warmup(nc, db_path)
    await sync_heartbeat_buffer(nc, db_path)
    # Every grouping of the same messages must give what applying them one by one gives.
    groupings = {
        "PC-W1": [[0, 1], [2, 3, 4]],
        "PC-W2": [[0, 1, 2, 3, 4]],
        "PC-W3": [[0], [1, 2, 3], [4]],
        "PC-W4": [[0, 1, 2], [3, 4]],
    }
    for pc, windows in groupings.items():
        for window in windows:
            await publish_window(nc, db_path, pc, window)
            assert agent(db_path, pc) == EXPECTED[window[-1]], f"{pc} after window {window}"
    # Window [1, 2, 3] of PC-W3 ended on step 3: [] keys stored as '[]', [] quarantine NULL.
    assert agent_raw(db_path, "PC-W3")["command_keys"] == '["k2:fp2","k3:fp3"]'


async def test_heartbeat_window_merge_keeps_display_name_only_with_a_user(
    projectord_factory, nc, db_path
):
    await projectord_factory(flush_interval_ms=60000, flush_max=2)
    await core_warmup(nc, db_path)
    await sync_heartbeat_buffer(nc, db_path)
    pc = "PC-DN"
    msgs = [
        heartbeat(pc, at=0, last_logon_user="u1", last_logon_display_name="User One"),
        heartbeat(pc, at=1, last_logon_display_name="Ignored Without User"),
        heartbeat(pc, at=2, hostname="late-hostname", os_family="macos"),
        heartbeat(pc, at=3, hostname="other", command_keys=["a:b"]),
        heartbeat(pc, at=4, last_logon_display_name="Still Ignored"),
    ]
    for m in msgs:
        await nc.publish(f"heartbeat.{pc}", body(m))
    mark = 9000 + next(_probe)
    await nc.publish("heartbeat.sync", body(heartbeat("sync", at=mark)))
    await wait_until(lambda: heartbeat_at(db_path, "sync", mark))
    row = agent(db_path, pc)
    assert row["last_logon_user"] == "u1"
    assert row["last_logon_display_name"] == "User One"
    assert (row["hostname"], row["os_family"]) == ("late-hostname", "macos")
    assert row["command_keys"] == ["a:b"]
    assert row["last_heartbeat"] == db_ts(4)


# --- host_perf ----------------------------------------------------------------------


def perf_row(db_path, pc_id, at):
    rows = query(
        db_path,
        "SELECT cpu_pct, cpu_count, mem_used_bytes, mem_total_bytes, swap_used_bytes,"
        " swap_total_bytes, disk_read_bytes_per_sec, disk_written_bytes_per_sec,"
        " net_rx_bytes_per_sec, net_tx_bytes_per_sec FROM host_perf_samples"
        " WHERE pc_id = ? AND at = ?",
        [pc_id, db_ts(at)],
    )
    return rows


def count(db_path, table, pc_id):
    return query(db_path, f"SELECT COUNT(*) FROM {table} WHERE pc_id = ?", [pc_id])[0][0]


FULL_PERF = dict(
    cpu_pct=12.5,
    cpu_count=8,
    mem_used_bytes=4_000_000_000,
    mem_total_bytes=16_000_000_000,
    swap_used_bytes=0,
    swap_total_bytes=2_000_000_000,
    disk_read_bytes_per_sec=1024.5,
    disk_written_bytes_per_sec=2048.0,
    net_rx_bytes_per_sec=10.0,
    net_tx_bytes_per_sec=20.25,
)


async def test_host_perf_first_writer_wins_and_bare_sample(projectord_factory, nc, db_path):
    await projectord_factory(flush_interval_ms=50)
    await core_warmup(nc, db_path)
    # Same (pc, at) within one window ...
    await nc.publish("host_perf.pc1", body(host_perf("pc1", at=0, **FULL_PERF)))
    await nc.publish("host_perf.pc1", body(host_perf("pc1", at=0, cpu_pct=99.0, cpu_count=1)))
    await nc.publish("host_perf.pc2", body(host_perf("pc2", at=0)))
    await wait_until(lambda: count(db_path, "host_perf_samples", "pc2") == 1)
    # ... and across flushes: the stored sample stays.
    await nc.publish("host_perf.pc1", body(host_perf("pc1", at=0, cpu_pct=50.0)))
    await nc.publish("host_perf.pc1", body(host_perf("pc1", at=60, cpu_pct=3.0)))
    await wait_until(lambda: count(db_path, "host_perf_samples", "pc1") == 2)
    await nc.publish("host_perf.pc3", body(host_perf("pc3", at=0)))  # a later sentinel
    await wait_until(lambda: count(db_path, "host_perf_samples", "pc3") == 1)
    assert perf_row(db_path, "pc1", 0) == [tuple(FULL_PERF.values())]
    assert perf_row(db_path, "pc1", 60)[0][0] == 3.0
    assert perf_row(db_path, "pc2", 0) == [(None,) * 10], "a bare {pc_id, at} is a row of NULLs"
    assert count(db_path, "host_perf_samples", "pc1") == 2


async def test_host_perf_at_with_offset_is_the_same_instant(projectord_factory, nc, db_path):
    await projectord_factory(flush_interval_ms=50)
    await core_warmup(nc, db_path)
    await nc.publish(
        "host_perf.pc1",
        body({"pc_id": "pc1", "at": "2026-05-20T12:00:00.5Z", "cpu_pct": 1.0}),
    )
    await nc.publish(
        "host_perf.pc1",
        body({"pc_id": "pc1", "at": "2026-05-20T21:00:00.500000000+09:00", "cpu_pct": 2.0}),
    )
    await nc.publish("host_perf.pc9", body(host_perf("pc9", at=0)))
    await wait_until(lambda: count(db_path, "host_perf_samples", "pc9") == 1)
    assert query(db_path, "SELECT at, cpu_pct FROM host_perf_samples WHERE pc_id = 'pc1'") == [
        ("2026-05-20T12:00:00.500000+00:00", 1.0)
    ]


# --- process_perf -------------------------------------------------------------------


async def test_process_perf_rows_per_process(projectord_factory, nc, db_path):
    await projectord_factory(flush_interval_ms=50)
    await core_warmup(nc, db_path)
    procs = [
        {
            "pid": 4242,
            "name": "chrome.exe",
            "cpu_pct": 180.5,
            "rss_bytes": 900_000_000,
            "disk_read_bytes_per_sec": 12.0,
            "disk_written_bytes_per_sec": 3.5,
        },
        {"pid": 17, "name": "svchost.exe", "cpu_pct": 2.0, "rss_bytes": 20_000_000},
        {"pid": 1, "name": "System", "cpu_pct": 0, "rss_bytes": 0},
    ]
    await nc.publish("process_perf.pc1", body(process_perf("pc1", at=0, processes=procs)))
    # An empty list (investigation mode on, nothing above the cut) writes nothing.
    await nc.publish("process_perf.pc-empty", body(process_perf("pc-empty", at=0, processes=[])))
    # A re-sent sample is ignored per (pc, at, pid); a new pid at the same instant is added.
    resend = [
        {**procs[0], "cpu_pct": 1.0},
        {"pid": 99, "name": "new.exe", "cpu_pct": 1.0, "rss_bytes": 1},
    ]
    await nc.publish("process_perf.pc1", body(process_perf("pc1", at=0, processes=resend)))
    await nc.publish("process_perf.pc1", body(process_perf("pc1", at=60, processes=procs[:1])))
    await wait_until(lambda: count(db_path, "process_perf_samples", "pc1") == 5)
    await nc.publish("process_perf.pc9", body(process_perf("pc9", at=0, processes=procs[:1])))
    await wait_until(lambda: count(db_path, "process_perf_samples", "pc9") == 1)
    rows = query(
        db_path,
        "SELECT at, pid, name, cpu_pct, rss_bytes, disk_read_bytes_per_sec,"
        " disk_written_bytes_per_sec FROM process_perf_samples WHERE pc_id = 'pc1'"
        " ORDER BY at, pid",
    )
    assert rows == [
        (db_ts(0), 1, "System", 0.0, 0, None, None),
        (db_ts(0), 17, "svchost.exe", 2.0, 20_000_000, None, None),
        (db_ts(0), 99, "new.exe", 1.0, 1, None, None),
        (db_ts(0), 4242, "chrome.exe", 180.5, 900_000_000, 12.0, 3.5),
        (db_ts(60), 4242, "chrome.exe", 180.5, 900_000_000, 12.0, 3.5),
    ]
    assert count(db_path, "process_perf_samples", "pc-empty") == 0
    assert query(db_path, "SELECT COUNT(*) FROM projector_rejects") == [(0,)]


# --- malformed core messages -------------------------------------------------------


async def test_malformed_core_messages_are_rejected_and_do_not_stop_the_rest(
    projectord_factory, nc, db_path
):
    await projectord_factory(flush_interval_ms=50)
    await core_warmup(nc, db_path)
    bad = [
        ("heartbeat", "heartbeat.pcx", b"{not json"),
        ("heartbeat", "heartbeat.pcx", body({"pc_id": "pcx", "at": ts(0)})),  # no agent_version
        ("heartbeat", "heartbeat.pcx", body({**heartbeat("pcx"), "at": "2026-05-20T12:00:00"})),
        ("heartbeat", "heartbeat.pcx", body({**heartbeat("pcx"), "command_keys": "k1"})),
        ("host_perf", "host_perf.pcx", body({**host_perf("pcx"), "cpu_pct": "high"})),
        ("host_perf", "host_perf.pcx", body([1, 2, 3])),
        (
            "process_perf",
            "process_perf.pcx",
            body(process_perf("pcx", processes=[{"pid": 1, "name": "a", "cpu_pct": 1}])),
        ),
        ("process_perf", "process_perf.pcx", body({"pc_id": "pcx", "at": ts(7)})),
    ]
    for _, subject, payload in bad:
        await nc.publish(subject, payload)
    await nc.publish("heartbeat.pc-ok", body(heartbeat("pc-ok", at=1, hostname="ok")))
    await nc.publish("host_perf.pc-ok", body(host_perf("pc-ok", at=1, cpu_pct=1.0)))
    await nc.publish(
        "process_perf.pc-ok",
        body(
            process_perf(
                "pc-ok", at=1, processes=[{"pid": 2, "name": "b", "cpu_pct": 1.0, "rss_bytes": 3}]
            )
        ),
    )

    def all_landed():
        return (
            count(db_path, "agents", "pc-ok") == 1
            and count(db_path, "host_perf_samples", "pc-ok") == 1
            and count(db_path, "process_perf_samples", "pc-ok") == 1
            and query(db_path, "SELECT COUNT(*) FROM projector_rejects")[0][0] >= len(bad)
        )

    await wait_until(all_landed)
    rejects = query(
        db_path,
        "SELECT projector, stream, stream_seq, subject, error, payload, payload_size,"
        " published_at FROM projector_rejects ORDER BY id",
    )
    assert sorted((r[0], r[3], r[5]) for r in rejects) == sorted(bad)
    for projector, stream, seq, _subject, error, payload, size, published_at in rejects:
        assert stream is None and seq is None, projector
        assert error and size == len(payload) and published_at.endswith("+00:00")
    errors = {r[5]: r[4] for r in rejects}
    assert len(errors) == len(bad)
    assert "not JSON" in errors[bad[0][2]]
    assert "agent_version" in errors[bad[1][2]]
    assert "field 'at'" in errors[bad[2][2]]
    assert "command_keys" in errors[bad[3][2]]
    assert "cpu_pct" in errors[bad[4][2]]
    assert "rss_bytes" in errors[bad[6][2]]
    assert "processes" in errors[bad[7][2]]
    for table in ("agents", "host_perf_samples", "process_perf_samples"):
        assert count(db_path, table, "pcx") == 0
    # Still consuming after the rejects.
    await nc.publish("heartbeat.pc-after", body(heartbeat("pc-after", at=2)))
    await wait_until(lambda: count(db_path, "agents", "pc-after") == 1)
