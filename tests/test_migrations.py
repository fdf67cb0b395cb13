"""Migrations: `alembic upgrade head` builds the schema of projection-semantics 12.

alembic runs as a real subprocess from the repository root, the way an operator
runs it; `projectord migrate` likewise. The database is then read back with the
stdlib sqlite3 module (PRAGMA table_info / index_list / index_xinfo).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from projectord.database import create_writer_engine
from projectord.migrations import head_revision, upgrade_to_head
from projectord.schema import metadata

REPO = Path(__file__).resolve().parents[1]
ALEMBIC = Path(sys.executable).with_name("alembic")

SPEC_TABLES = (
    "agents",
    "execution_results",
    "executions",
    "audit_log",
    "obs_events",
    "host_perf_samples",
    "process_perf_samples",
)
BOOKKEEPING_TABLES = (
    "projector_checkpoints",
    "projector_rejects",
    "projector_gaps",
    "kv_entries",
    "kv_mirror_status",
    "broker_streams",
    "broker_consumers",
    "schedule_fires",
    "scheduler_rejects",
    "schedule_calendar_state",
    "pending_waves",
    "host_perf_rollup",
    "broker_resources",
)

# (name, declared type, NOT NULL, position in the primary key) per projection-semantics 12.
T, TS, INT, R = "TEXT", "TIMESTAMP", "INTEGER", "REAL"
SPEC_COLUMNS = {
    "agents": [
        ("pc_id", T, 1, 1),
        ("hostname", T, 0, 0),
        ("last_heartbeat", TS, 0, 0),
        ("agent_version", T, 0, 0),
        ("os_family", T, 0, 0),
        ("updated_at", TS, 1, 0),
        ("agent_cpu_pct", R, 0, 0),
        ("agent_rss_bytes", INT, 0, 0),
        ("agent_disk_read_bytes", INT, 0, 0),
        ("agent_disk_written_bytes", INT, 0, 0),
        ("quarantined_versions", T, 0, 0),
        ("last_logon_user", T, 0, 0),
        ("last_logon_display_name", T, 0, 0),
        ("command_keys", T, 0, 0),
        ("enforcing", INT, 0, 0),
        ("nats_user", T, 0, 0),
        ("nats_user_since", T, 0, 0),
        ("command_protocols", T, 0, 0),
    ],
    "execution_results": [
        ("result_id", T, 1, 1),
        ("request_id", T, 1, 0),
        ("exec_id", T, 0, 0),
        ("pc_id", T, 1, 0),
        ("exit_code", INT, 0, 0),
        ("stdout", T, 1, 0),
        ("stderr", T, 1, 0),
        ("started_at", TS, 1, 0),
        ("finished_at", TS, 0, 0),
        ("recorded_at", TS, 1, 0),
        ("job_id", T, 0, 0),
        ("version", T, 0, 0),
        ("reaped", INT, 1, 0),
        ("expires_at", TS, 0, 0),
        ("parent_result_id", T, 0, 0),
        ("skipped", INT, 1, 0),
    ],
    "executions": [
        ("exec_id", T, 1, 1),
        ("job_id", T, 1, 0),
        ("version", T, 1, 0),
        ("initiated_by", T, 1, 0),
        ("initiated_at", TS, 1, 0),
        ("target_count", INT, 1, 0),
        ("success_count", INT, 1, 0),
        ("failure_count", INT, 1, 0),
        ("status", T, 1, 0),
        ("schedule_id", T, 0, 0),  # ours: which schedule fired it
    ],
    "audit_log": [
        ("id", INT, 1, 1),
        ("actor", T, 1, 0),
        ("action", T, 1, 0),
        ("target", T, 0, 0),
        ("payload", T, 0, 0),
        ("occurred_at", TS, 1, 0),
        ("stream_seq", INT, 0, 0),
    ],
    "obs_events": [
        ("id", INT, 1, 1),
        ("pc_id", T, 1, 0),
        ("at", TS, 1, 0),
        ("kind", T, 1, 0),
        ("source", T, 1, 0),
        ("event_record_id", T, 0, 0),
        ("payload", T, 0, 0),
    ],
    "host_perf_samples": [
        ("pc_id", T, 1, 1),
        ("at", TS, 1, 2),
        ("cpu_pct", R, 0, 0),
        ("cpu_count", INT, 0, 0),
        ("mem_used_bytes", INT, 0, 0),
        ("mem_total_bytes", INT, 0, 0),
        ("swap_used_bytes", INT, 0, 0),
        ("swap_total_bytes", INT, 0, 0),
        ("disk_read_bytes_per_sec", R, 0, 0),
        ("disk_written_bytes_per_sec", R, 0, 0),
        ("net_rx_bytes_per_sec", R, 0, 0),
        ("net_tx_bytes_per_sec", R, 0, 0),
    ],
    "process_perf_samples": [
        ("pc_id", T, 1, 1),
        ("at", TS, 1, 2),
        ("pid", INT, 1, 3),
        ("name", T, 1, 0),
        ("cpu_pct", R, 1, 0),
        ("rss_bytes", INT, 1, 0),
        ("disk_read_bytes_per_sec", R, 0, 0),
        ("disk_written_bytes_per_sec", R, 0, 0),
    ],
}

# Explicit indexes per table: name -> (key columns with DESC flag, unique, WHERE or None).
D = True  # DESC
SPEC_INDEXES = {
    "agents": {
        "idx_agents_heartbeat": ([("last_heartbeat", D)], False, None),
        # Ours (0005): the API's agents page.
        "idx_agents_updated": ([("updated_at", D), ("pc_id", D)], False, None),
    },
    "execution_results": {
        "idx_results_exec_recorded": (
            [("exec_id", False), ("recorded_at", D)],
            False,
            "exec_id IS NOT NULL",
        ),
        "idx_results_inflight_started": ([("started_at", D)], False, "finished_at IS NULL"),
        "idx_results_job_pc_finished": (
            [("job_id", False), ("pc_id", False), ("finished_at", D)],
            False,
            "job_id IS NOT NULL",
        ),
        "idx_results_pc_recorded": ([("pc_id", False), ("recorded_at", D)], False, None),
        "idx_results_request": ([("request_id", False)], False, None),
        "idx_results_started_result": ([("started_at", D), ("result_id", D)], False, None),
        "idx_results_recorded": ([("recorded_at", False)], False, None),
        "idx_results_finished": ([("finished_at", False)], False, "finished_at IS NOT NULL"),
        "idx_results_expires_inflight": ([("expires_at", False)], False, "finished_at IS NULL"),
        "idx_results_parent": (
            [("parent_result_id", False)],
            False,
            "parent_result_id IS NOT NULL",
        ),
        # Ours (0005): a schedule's last run and recent counts.
        "idx_results_job_recorded": (
            [("job_id", False), ("recorded_at", D)],
            False,
            "job_id IS NOT NULL",
        ),
    },
    "executions": {
        "idx_executions_job_initiated": ([("job_id", False), ("initiated_at", D)], False, None),
        "idx_executions_initiated": ([("initiated_at", False)], False, None),
        "idx_executions_active": (
            [("status", False), ("job_id", False)],
            False,
            "status IN ('running','pending')",
        ),
    },
    "audit_log": {
        "idx_audit_action_occurred": ([("action", False), ("occurred_at", False)], False, None),
        "idx_audit_actor_occurred": ([("actor", False), ("occurred_at", False)], False, None),
        "idx_audit_occurred": ([("occurred_at", False)], False, None),
        "idx_audit_stream_seq": ([("stream_seq", False)], True, "stream_seq IS NOT NULL"),
    },
    "obs_events": {
        "idx_obs_events_at": ([("at", False)], False, None),
        "idx_obs_events_kind_at": ([("kind", False), ("at", D)], False, None),
        "idx_obs_events_pc_at": ([("pc_id", False), ("at", D)], False, None),
        "idx_obs_events_source": ([("source", False)], False, None),
    },
    "host_perf_samples": {"idx_host_perf_at": ([("at", False)], False, None)},
    "process_perf_samples": {"idx_process_perf_at": ([("at", False)], False, None)},
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANADE_")}
    env.update(extra)
    return env


def alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(ALEMBIC), *args],
        cwd=REPO,
        env=env or clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def projectord(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "projectord", *args],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def connect(path: Path) -> closing[sqlite3.Connection]:
    """A read-only connection, closed at the end of the ``with`` block."""
    assert path.is_file(), f"{path} was not created"
    return closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


def connect_rw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def _norm(sql: str | None) -> str | None:
    return None if sql is None else re.sub(r"\s+", " ", sql).strip()


def schema_snapshot(path: Path) -> dict[tuple[str, str], str | None]:
    """Every schema object except alembic's own table and SQLite internals."""
    with connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return {
        (kind, name): _norm(sql)
        for kind, name, table, sql in rows
        if table != "alembic_version" and not name.startswith("sqlite_sequence")
    }


def tables(path: Path) -> set[str]:
    with connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows} - {"sqlite_sequence", "alembic_version"}


def revision(path: Path) -> list[str]:
    with connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A database built by `alembic -x db=PATH upgrade head` from the repository root."""
    path = tmp_path_factory.mktemp("alembic") / "backend.db"
    alembic("-x", f"db={path}", "upgrade", "head")
    return path


# --- alembic upgrade head --------------------------------------------------------------


def test_upgrade_head_creates_every_table(migrated):
    assert tables(migrated) == set(SPEC_TABLES) | set(BOOKKEEPING_TABLES)
    assert revision(migrated) == [head_revision()]


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_columns_follow_the_spec(migrated, table):
    with connect(migrated) as conn:
        info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    got = [(name, decl.upper(), notnull, pk) for _cid, name, decl, notnull, _dflt, pk in info]
    assert got == SPEC_COLUMNS[table]


def test_autoincrement_ids(migrated):
    with connect(migrated) as conn:
        for table in ("audit_log", "obs_events", "projector_rejects", "projector_gaps"):
            sql = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()[0]
            assert "AUTOINCREMENT" in sql.upper(), table


def test_column_defaults(migrated, tmp_path):
    """Defaults of section 12, observed by inserting rows that omit those columns."""
    copy = tmp_path / "defaults.db"
    with connect(migrated) as src, connect_rw(copy) as dst:
        src.backup(dst)
    with connect_rw(copy) as conn:
        conn.execute(
            "INSERT INTO execution_results (result_id, request_id, pc_id, started_at,"
            " recorded_at) VALUES ('r1', 'q1', 'pc1', 't', 't')"
        )
        conn.execute(
            "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
            " target_count) VALUES ('e1', 'j1', 'v1', 'operator', 't', 2)"
        )
        result = conn.execute(
            "SELECT stdout, stderr, reaped, typeof(reaped), skipped, typeof(skipped),"
            " exit_code, finished_at, expires_at FROM execution_results"
        ).fetchone()
        execution = conn.execute(
            "SELECT success_count, typeof(success_count), failure_count, status, schedule_id"
            " FROM executions"
        ).fetchone()
    assert result == ("", "", 0, "integer", 0, "integer", None, None, None)
    assert execution == (0, "integer", 0, "pending", None)


def test_executions_has_a_nullable_schedule_id(migrated):
    with connect(migrated) as conn:
        info = {r[1]: r for r in conn.execute("PRAGMA table_info(executions)")}
    assert "schedule_id" in info
    _cid, _name, decl, notnull, default, pk = info["schedule_id"]
    assert (decl.upper(), notnull, default, pk) == ("TEXT", 0, None, 0)


def _where(sql: str) -> str | None:
    m = re.search(r"\bWHERE\b(.*)$", sql, re.IGNORECASE | re.DOTALL)
    if m is None:
        return None
    return re.sub(r"\s+", " ", m.group(1)).strip().replace(", ", ",")


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_indexes_follow_the_spec(migrated, table):
    with connect(migrated) as conn:
        listed = conn.execute(f"PRAGMA index_list({table})").fetchall()
        got = {}
        for _seq, name, unique, origin, partial in listed:
            if origin != "c":  # primary-key and UNIQUE-constraint autoindexes: below
                continue
            keys = [
                (col, bool(desc))
                for _seqno, _cid, col, desc, _coll, key in conn.execute(
                    f"PRAGMA index_xinfo({name})"
                )
                if key
            ]
            sql = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
            ).fetchone()[0]
            where = _where(sql)
            assert bool(partial) == (where is not None), name
            got[name] = (keys, bool(unique), where)
    assert got == SPEC_INDEXES[table]


def _autoindex_keys(conn: sqlite3.Connection, table: str, origin: str) -> list[list[str]]:
    out = []
    for _seq, name, unique, idx_origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
        if idx_origin == origin:
            assert unique
            out.append([r[2] for r in conn.execute(f"PRAGMA index_info({name})")])
    return out


def test_keys_and_unique_constraints(migrated):
    with connect(migrated) as conn:
        assert _autoindex_keys(conn, "obs_events", "u") == [["pc_id", "source", "event_record_id"]]
        assert _autoindex_keys(conn, "host_perf_samples", "pk") == [["pc_id", "at"]]
        assert _autoindex_keys(conn, "process_perf_samples", "pk") == [["pc_id", "at", "pid"]]
        assert _autoindex_keys(conn, "agents", "pk") == [["pc_id"]]
        assert _autoindex_keys(conn, "execution_results", "pk") == [["result_id"]]
        assert _autoindex_keys(conn, "executions", "pk") == [["exec_id"]]


def test_bookkeeping_tables(migrated):
    with connect(migrated) as conn:
        cols = {
            t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in BOOKKEEPING_TABLES
        }
    assert cols["projector_checkpoints"] == [
        "projector",
        "stream",
        "durable",
        "last_seq",
        "last_message_at",
        "stream_created",
        "updated_at",
    ]
    for needed in ("projector", "stream", "stream_seq", "subject", "error", "payload"):
        assert needed in cols["projector_rejects"]
    assert "recorded_at" in cols["projector_rejects"]
    for needed in ("projector", "stream", "from_seq", "to_seq", "missing", "detected_at"):
        assert needed in cols["projector_gaps"]


def test_migrated_schema_equals_metadata_create_all(migrated, tmp_path):
    reference = tmp_path / "create_all.db"
    engine = create_engine(f"sqlite:///{reference}")
    metadata.create_all(engine)
    engine.dispose()
    want = schema_snapshot(reference)
    got = schema_snapshot(migrated)
    assert set(got) == set(want)
    for key in sorted(want):
        assert got[key] == want[key], key


def test_upgrade_with_sqlite_url_form(migrated, tmp_path):
    path = tmp_path / "url.db"
    alembic("-x", f"db=sqlite:///{path}", "upgrade", "head")
    assert schema_snapshot(path) == schema_snapshot(migrated)


def test_upgrade_head_with_kanade_db_env(migrated, tmp_path):
    path = tmp_path / "env.db"
    alembic("upgrade", "head", env=clean_env(KANADE_DB=str(path)))
    assert schema_snapshot(path) == schema_snapshot(migrated)
    assert revision(path) == [head_revision()]


def test_upgrade_head_with_kanade_config(migrated, tmp_path):
    path = tmp_path / "from-config.db"
    config = tmp_path / "kanade.toml"
    config.write_text(f'[database]\npath = "{path}"\n')
    alembic("upgrade", "head", env=clean_env(KANADE_CONFIG=str(config)))
    assert schema_snapshot(path) == schema_snapshot(migrated)


def test_downgrade_base_then_upgrade_head_round_trips(migrated, tmp_path):
    path = tmp_path / "round.db"
    alembic("-x", f"db={path}", "upgrade", "head")
    before = schema_snapshot(path)
    assert before == schema_snapshot(migrated)

    alembic("-x", f"db={path}", "downgrade", "base")
    assert tables(path) == set()
    assert revision(path) == []
    with connect(path) as conn:
        leftover = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    assert leftover == []

    alembic("-x", f"db={path}", "upgrade", "head")
    assert schema_snapshot(path) == before
    assert revision(path) == [head_revision()]


def test_alembic_leaves_the_database_in_wal(migrated):
    with connect(migrated) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- projectord migrate ------------------------------------------------------------------


def _migrated_event(stderr: str) -> dict:
    for line in stderr.splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "migrated":
            return json.loads(line)
    raise AssertionError(f"no 'migrated' log line in:\n{stderr}")


def test_projectord_migrate_wal_and_idempotent(migrated, tmp_path):
    db = tmp_path / "state" / "backend.db"
    first = projectord("migrate", "--db", str(db), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    event = _migrated_event(first.stderr)
    assert (event["before"], event["after"]) == (None, head_revision())

    with connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    snapshot = schema_snapshot(db)
    assert snapshot == schema_snapshot(migrated)

    with connect_rw(db) as conn:
        conn.execute(
            "INSERT INTO agents (pc_id, updated_at) VALUES ('pc1', '2026-05-20T12:00:00Z')"
        )

    second = projectord("migrate", "--db", str(db), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    event = _migrated_event(second.stderr)
    assert (event["before"], event["after"]) == (head_revision(), head_revision())
    assert schema_snapshot(db) == snapshot
    with connect(db) as conn:
        assert conn.execute("SELECT pc_id FROM agents").fetchall() == [("pc1",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert revision(db) == [head_revision()]


def test_upgrade_to_head_in_process_is_idempotent(migrated, tmp_path):
    engine = create_writer_engine(tmp_path / "inproc.db")
    try:
        assert upgrade_to_head(engine) == (None, head_revision())
        assert upgrade_to_head(engine) == (head_revision(), head_revision())
    finally:
        engine.dispose()
    assert schema_snapshot(tmp_path / "inproc.db") == schema_snapshot(migrated)
