"""broker_resources: which probed streams, KV buckets and object stores exist (real broker)."""

from __future__ import annotations

import sqlite3

from harness import query, wait_until

from projectord.broker_resources import KV_BUCKETS, OBJECT_STORES, STREAMS
from projectord.broker_status import (
    PROBED_KV,
    PROBED_OBJECT_STORES,
    PROBED_STREAMS,
    probed_resources,
)
from projectord.database import create_writer_engine
from projectord.migrations import upgrade_to_head

T = "2026-11-22T12:00:00.000000+00:00"


def resources(db_path) -> dict[tuple[str, str], int]:
    rows = query(db_path, "SELECT kind, name, present FROM broker_resources")
    return {(kind, name): present for kind, name, present in rows}


def expected(extra_kv: set[str], extra_obj: set[str], gone: set[str] = frozenset()) -> dict:
    """Presence per probed resource when projectord's bootstrap ran plus ``extra_*``."""
    streams = {s.name for s in STREAMS}
    kv = {b for b, _ in KV_BUCKETS} | extra_kv
    obj = {b for b, _, _ in OBJECT_STORES} | extra_obj
    out = {}
    for name in PROBED_STREAMS:
        out[("stream", name)] = int(name in streams and name not in gone)
    for name in PROBED_KV:
        out[("kv", name)] = int(name in kv and name not in gone)
    for name in PROBED_OBJECT_STORES:
        out[("object_store", name)] = int(name in obj and name not in gone)
    return out


def test_the_probed_list_is_api_md_3_2():
    assert len(probed_resources()) == 26
    names = {(kind, stream) for kind, _, stream in probed_resources()}
    assert ("kv", "KV_agents_state") in names and ("object_store", "OBJ_scripts") in names
    assert ("stream", "NOTIFICATIONS") in names


async def test_every_snapshot_records_which_resources_exist(js, db_path, projectord_factory):
    # A bucket and a store projectord does not create, made by "someone else".
    await js.create_key_value(bucket="agents_state")
    await js.create_object_store("agent_releases")
    # A row of a name no longer probed, left by an older release.
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    engine.dispose()
    conn = sqlite3.connect(db_path, timeout=30)
    with conn:
        conn.execute(
            "INSERT INTO broker_resources (kind, name, present, observed_at)"
            " VALUES ('stream', 'RETIRED', 1, ?)",
            (T,),
        )
    conn.close()

    await projectord_factory(status_interval_s=0.5)
    want = expected({"agents_state"}, {"agent_releases"})
    await wait_until(lambda: resources(db_path) == want, timeout=15)
    # Some probed names are created by neither side here: they must read absent.
    assert want[("kv", "agent_meta")] == 0 and want[("object_store", "app_packages")] == 0
    assert want[("kv", "agents_state")] == 1 and want[("stream", "RESULTS")] == 1
    # Written with the stream snapshot, in one transaction: one observed_at for all.
    stamps = query(
        db_path,
        "SELECT DISTINCT observed_at FROM broker_resources"
        " UNION SELECT DISTINCT observed_at FROM broker_streams",
    )
    assert len(stamps) == 1

    await js.delete_key_value("agents_state")
    await js.delete_object_store("agent_releases")
    await js.delete_stream("NOTIFICATIONS")
    gone = {"agents_state", "agent_releases", "NOTIFICATIONS"}
    await wait_until(lambda: resources(db_path) == expected(set(), set(), gone), timeout=15)
    assert resources(db_path)[("stream", "NOTIFICATIONS")] == 0
