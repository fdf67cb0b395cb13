"""Target resolution: liveness, groups from both group buckets, explicit PCs, roster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from projectord.database import create_writer_engine
from projectord.migrations import upgrade_to_head
from projectord.scheduler.schedule import Target
from projectord.scheduler.targets import read_groups, read_heartbeats, resolve_target
from projectord.schema import agents, kv_entries
from projectord.timestamps import format_db

NOW = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
FRESH = format_db(NOW - timedelta(minutes=2))  # exactly at the threshold: alive
STALE = format_db(NOW - timedelta(minutes=2, microseconds=1))
HEARTBEATS = {"a": FRESH, "b": STALE, "c": FRESH, "never": None}
GROUPS = {"a": frozenset({"office"}), "b": frozenset({"office", "lab"}), "c": frozenset({"lab"})}


def test_all_means_every_alive_pc():
    assert resolve_target(Target(all=True), HEARTBEATS, GROUPS, NOW) == ["a", "c"]


def test_groups_match_alive_members():
    assert resolve_target(Target(groups=("office",)), HEARTBEATS, GROUPS, NOW) == ["a"]
    assert resolve_target(Target(groups=("office", "lab")), HEARTBEATS, GROUPS, NOW) == ["a", "c"]


def test_listed_pcs_are_taken_alive_or_not():
    target = Target(groups=("lab",), pcs=("b", "unknown"))
    assert resolve_target(target, HEARTBEATS, GROUPS, NOW) == ["b", "c", "unknown"]


def test_roster_includes_offline_pcs():
    roster = resolve_target(Target(all=True), HEARTBEATS, GROUPS, NOW, alive_only=False)
    assert roster == ["a", "b", "c", "never"]
    lab = resolve_target(Target(groups=("lab",)), HEARTBEATS, GROUPS, NOW, alive_only=False)
    assert lab == ["b", "c"]


def test_groups_are_the_union_of_both_buckets(tmp_path):
    engine = create_writer_engine(tmp_path / "backend.db")
    upgrade_to_head(engine)
    row = {"revision": 1, "written_at": FRESH}
    with engine.begin() as conn:
        conn.execute(
            insert(kv_entries),
            [
                {**row, "bucket": "agent_groups", "key": "a", "value": '{"groups":["office"]}'},
                {
                    **row,
                    "bucket": "agent_groups_derived",
                    "key": "a",
                    "value": '{"groups":["win11"]}',
                },
                {
                    **row,
                    "bucket": "agent_groups_derived",
                    "key": "b",
                    "value": '{"groups":["win11"]}',
                },
                {
                    **row,
                    "bucket": "agent_groups",
                    "key": "old",
                    "value": '["office"]',
                },  # bare array
                {**row, "bucket": "jobs", "key": "j", "value": "{}"},
            ],
        )
        conn.execute(
            insert(agents),
            [
                {"pc_id": pc, "last_heartbeat": FRESH, "updated_at": FRESH}
                for pc in ("a", "b", "old")
            ],
        )
        groups = read_groups(conn)
        heartbeats = read_heartbeats(conn)
    engine.dispose()
    assert groups == {"a": frozenset({"office", "win11"}), "b": frozenset({"win11"})}
    assert resolve_target(Target(groups=("win11",)), heartbeats, groups, NOW) == ["a", "b"]
    assert resolve_target(Target(groups=("office",)), heartbeats, groups, NOW) == ["a"]
