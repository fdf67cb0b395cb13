"""Heartbeat upsert rules (projection-semantics 7.3) and the buffer's merge.

The core-NATS consumer keeps the newest heartbeat per PC and merges a newer one
into it with ``heartbeat.merge``; one flush then applies the merged record. That
must leave exactly the row that applying every heartbeat in turn would have.
Records are produced by the projector's own decoder from wire bodies, and rows
are read back from a real SQLite database migrated to head.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from projectord.database import create_writer_engine
from projectord.migrations import upgrade_to_head
from projectord.projectors import heartbeat
from projectord.projectors.contract import Delivery
from projectord.schema import agents

COMPARED = [c.name for c in agents.columns if c.name != "updated_at"]
T0 = "2026-05-20T12:00:00Z"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One database migrated to head; tests work on copies of it."""
    path = tmp_path_factory.mktemp("heartbeat") / "template.db"
    engine = create_writer_engine(path)
    upgrade_to_head(engine)
    engine.dispose()  # the last close checkpoints the WAL into the file
    assert not Path(str(path) + "-wal").exists()
    return path


def make_engine(template: Path, path: Path) -> Engine:
    shutil.copyfile(template, path)
    return create_writer_engine(path)


@pytest.fixture
def engine(template, tmp_path):
    e = make_engine(template, tmp_path / "hb.db")
    yield e
    e.dispose()


def decode(body: dict) -> dict:
    data = json.dumps(body).encode()
    return heartbeat.decode(Delivery(f"heartbeat.{body['pc_id']}", data, None, "x"))


def apply(engine: Engine, records: list[dict]) -> None:
    with engine.begin() as conn:
        heartbeat.apply(conn, records)


def rows(engine: Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        result = conn.execute(select(agents).order_by(agents.c.pc_id)).mappings().all()
    return {r["pc_id"]: {c: r[c] for c in COMPARED} for r in result}


def row(engine: Engine, pc_id: str = "pc1") -> dict:
    return rows(engine)[pc_id]


# --- random heartbeats -------------------------------------------------------------------

ABSENT = object()


def random_body(rng: random.Random, pc_id: str, n: int) -> dict:
    """A heartbeat as an agent might send it; optional fields absent, null or set."""

    def pick(*choices):
        return rng.choice(choices)

    fields = {
        "hostname": pick(ABSENT, None, "", "host-a", "host-b"),
        "os_family": pick(ABSENT, None, "windows", "linux"),
        "agent_cpu_pct": pick(ABSENT, None, 0, 1.5, 97.25),
        "agent_rss_bytes": pick(ABSENT, None, 0, 52_428_800, 2**40),
        "agent_disk_read_bytes": pick(ABSENT, None, 0, 123_456),
        "agent_disk_written_bytes": pick(ABSENT, None, 7, 9_999_999),
        "quarantined_versions": pick(ABSENT, [], ["0.9.0"], ["0.9.0", "0.9.1"]),
        "last_logon_user": pick(ABSENT, None, "", "alice", "bob"),
        "last_logon_display_name": pick(ABSENT, None, "", "Alice A.", "Bob B."),
        "command_keys": pick(ABSENT, None, [], ["k1:ab"], ["k1:ab", "k2:cd"]),
        "enforcing": pick(ABSENT, None, True, False),
        "command_protocols": pick(ABSENT, None, [], ["legacy"], ["legacy", "kanade.command.v2"]),
    }
    body = {
        "pc_id": pc_id,
        "at": f"2026-05-20T12:{n // 60 % 60:02d}:{n % 60:02d}.{rng.randrange(10**9):09d}Z",
        "agent_version": pick("0.43.0", "0.43.1", "0.44.0"),
    }
    body.update({k: v for k, v in fields.items() if v is not ABSENT})
    return body


def test_merged_buffer_equals_applying_each_in_turn(template, tmp_path):
    rng = random.Random(7_3)
    sequential = make_engine(template, tmp_path / "sequential.db")
    buffered = make_engine(template, tmp_path / "buffered.db")
    try:
        for trial in range(150):
            pcs = [f"pc-{trial}-{j}" for j in range(rng.randint(1, 3))]
            # Some PCs already have a row from an earlier flush.
            earlier = [decode(random_body(rng, pc, 0)) for pc in pcs if rng.random() < 0.6]
            if earlier:
                apply(sequential, earlier)
                apply(buffered, earlier)

            stream = [
                decode(random_body(rng, rng.choice(pcs), n + 1)) for n in range(rng.randint(1, 8))
            ]
            for record in stream:
                apply(sequential, [record])

            buffer: dict[str, dict] = {}
            for record in stream:
                have = buffer.get(record["pc_id"])
                buffer[record["pc_id"]] = record if have is None else heartbeat.merge(have, record)
            apply(buffered, list(buffer.values()))

        want, got = rows(sequential), rows(buffered)
        assert len(want) > 150
        for pc_id in want:
            assert got[pc_id] == want[pc_id], pc_id
        assert set(got) == set(want)
    finally:
        sequential.dispose()
        buffered.dispose()


def test_merge_does_not_mutate_its_inputs():
    rng = random.Random(1)
    for _ in range(200):
        old, new = (decode(random_body(rng, "pc1", n)) for n in (1, 2))
        old_copy, new_copy = dict(old), dict(new)
        heartbeat.merge(old, new)
        assert (old, new) == (old_copy, new_copy)


# --- direct examples of 7.3 --------------------------------------------------------------


def hb(n: int = 0, **fields) -> dict:
    body = {"pc_id": "pc1", "at": f"2026-05-20T12:00:{n:02d}Z", "agent_version": "0.43.0"}
    body.update(fields)
    return body


# (name, heartbeat bodies in arrival order, expected subset of the final row)
EXAMPLES = [
    (
        "first heartbeat stores what it carries",
        [
            hb(
                hostname="h1",
                os_family="windows",
                agent_cpu_pct=2.5,
                agent_rss_bytes=100,
                agent_disk_read_bytes=5,
                agent_disk_written_bytes=6,
                quarantined_versions=["0.9"],
                last_logon_user="alice",
                last_logon_display_name="Alice",
                command_keys=["k1:ab"],
                enforcing=True,
                command_protocols=["legacy"],
            )
        ],
        {
            "hostname": "h1",
            "os_family": "windows",
            "agent_version": "0.43.0",
            "last_heartbeat": "2026-05-20T12:00:00.000000+00:00",
            "agent_cpu_pct": 2.5,
            "agent_rss_bytes": 100,
            "agent_disk_read_bytes": 5,
            "agent_disk_written_bytes": 6,
            "quarantined_versions": '["0.9"]',
            "last_logon_user": "alice",
            "last_logon_display_name": "Alice",
            "command_keys": '["k1:ab"]',
            "enforcing": 1,
            "command_protocols": '["legacy"]',
            "nats_user": None,
            "nats_user_since": None,
        },
    ),
    (
        "hostname and os_family are sticky",
        [hb(0, hostname="h1", os_family="windows"), hb(1, hostname="h2", os_family="linux")],
        {"hostname": "h1", "os_family": "windows"},
    ),
    (
        "sticky value is taken when the stored one is NULL",
        [hb(0), hb(1, hostname="h2", os_family="linux")],
        {"hostname": "h2", "os_family": "linux"},
    ),
    (
        "sticky value survives a heartbeat without it",
        [hb(0, hostname="h1"), hb(1), hb(2, hostname=None)],
        {"hostname": "h1"},
    ),
    (
        "an empty hostname is a value and sticks",
        [hb(0, hostname=""), hb(1, hostname="h2")],
        {"hostname": ""},
    ),
    (
        "agent_version and last_heartbeat are overwritten",
        [hb(5, agent_version="0.43.0"), {**hb(3), "agent_version": "0.44.0"}],
        {"agent_version": "0.44.0", "last_heartbeat": "2026-05-20T12:00:03.000000+00:00"},
    ),
    (
        "last_heartbeat is stored in UTC storage format",
        [{**hb(), "at": "2026-05-20T21:00:00.123456789+09:00"}],
        {"last_heartbeat": "2026-05-20T12:00:00.123456+00:00"},
    ),
    (
        "metrics missing from a heartbeat clear to NULL",
        [
            hb(
                0,
                agent_cpu_pct=3.0,
                agent_rss_bytes=1,
                agent_disk_read_bytes=2,
                agent_disk_written_bytes=3,
            ),
            hb(1),
        ],
        {
            "agent_cpu_pct": None,
            "agent_rss_bytes": None,
            "agent_disk_read_bytes": None,
            "agent_disk_written_bytes": None,
        },
    ),
    (
        "metrics are overwritten by newer values",
        [hb(0, agent_cpu_pct=3.0, agent_rss_bytes=10), hb(1, agent_cpu_pct=0, agent_rss_bytes=0)],
        {"agent_cpu_pct": 0.0, "agent_rss_bytes": 0},
    ),
    (
        "quarantined_versions missing clears to NULL",
        [hb(0, quarantined_versions=["0.9"]), hb(1)],
        {"quarantined_versions": None},
    ),
    (
        "quarantined_versions empty list is stored as NULL",
        [hb(0, quarantined_versions=["0.9"]), hb(1, quarantined_versions=[])],
        {"quarantined_versions": None},
    ),
    (
        "quarantined_versions is overwritten",
        [hb(0, quarantined_versions=["0.9"]), hb(1, quarantined_versions=["1.0", "1.1"])],
        {"quarantined_versions": '["1.0","1.1"]'},
    ),
    (
        "logon user kept when a heartbeat omits it",
        [hb(0, last_logon_user="alice"), hb(1), hb(2, last_logon_user=None)],
        {"last_logon_user": "alice"},
    ),
    (
        "logon user replaced by a newer non-NULL value, '' included",
        [hb(0, last_logon_user="alice"), hb(1, last_logon_user="")],
        {"last_logon_user": ""},
    ),
    (
        "display name only taken with a non-NULL user",
        [
            hb(0, last_logon_user="alice", last_logon_display_name="Alice"),
            hb(1, last_logon_display_name="Mallory"),
        ],
        {"last_logon_user": "alice", "last_logon_display_name": "Alice"},
    ),
    (
        "display name taken with the user, even when absent",
        [
            hb(0, last_logon_user="alice", last_logon_display_name="Alice"),
            hb(1, last_logon_user="bob"),
        ],
        {"last_logon_user": "bob", "last_logon_display_name": None},
    ),
    (
        "'' logon values are stored raw",
        [hb(0, last_logon_user="", last_logon_display_name="")],
        {"last_logon_user": "", "last_logon_display_name": ""},
    ),
    (
        "command_keys absent keeps the stored list",
        [hb(0, command_keys=["k1:ab"]), hb(1), hb(2, command_keys=None)],
        {"command_keys": '["k1:ab"]'},
    ),
    (
        "command_keys [] is a value, distinct from absent",
        [hb(0, command_keys=["k1:ab"]), hb(1, command_keys=[])],
        {"command_keys": "[]"},
    ),
    (
        "command_keys never reported stays NULL",
        [hb(0), hb(1)],
        {"command_keys": None, "enforcing": None, "command_protocols": None},
    ),
    (
        "enforcing false is 0 and kept when omitted",
        [hb(0, enforcing=True), hb(1, enforcing=False), hb(2)],
        {"enforcing": 0},
    ),
    (
        "command_protocols follow the command_keys rule",
        [hb(0, command_protocols=["legacy"]), hb(1), hb(2, command_protocols=[])],
        {"command_protocols": "[]"},
    ),
]


@pytest.mark.parametrize("mode", ["each_in_turn", "merged_in_buffer"])
@pytest.mark.parametrize(("name", "bodies", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_rule_examples(engine, mode, name, bodies, expected):
    records = [decode(b) for b in bodies]
    if mode == "each_in_turn":
        for record in records:
            apply(engine, [record])
    else:
        merged = records[0]
        for record in records[1:]:
            merged = heartbeat.merge(merged, record)
        apply(engine, [merged])
    got = row(engine)
    assert {k: got[k] for k in expected} == expected


def test_examples_split_across_flushes(engine):
    """A stored row, then a merged window: the rules hold across the flush boundary."""
    apply(engine, [decode(hb(0, hostname="h1", last_logon_user="alice", command_keys=["k"]))])
    window = [
        decode(hb(1, hostname="h2", last_logon_display_name="X", agent_cpu_pct=1.0)),
        decode(hb(2, command_keys=[])),
    ]
    apply(engine, [heartbeat.merge(*window)])
    got = row(engine)
    assert got["hostname"] == "h1"
    assert got["last_logon_user"] == "alice"
    assert got["last_logon_display_name"] is None
    assert got["command_keys"] == "[]"
    assert got["agent_cpu_pct"] is None
    assert got["last_heartbeat"] == "2026-05-20T12:00:02.000000+00:00"


def test_updated_at_is_the_flush_time(engine):
    apply(engine, [decode(hb(0))])
    with engine.connect() as conn:
        first = conn.execute(select(agents.c.updated_at)).scalar_one()
    apply(engine, [decode(hb(1))])
    with engine.connect() as conn:
        second = conn.execute(select(agents.c.updated_at)).scalar_one()
    assert first.endswith("+00:00") and len(first) == len("2026-05-20T12:00:00.000000+00:00")
    assert second >= first


def test_one_flush_writes_many_pcs(engine):
    records = [decode({**hb(), "pc_id": f"pc{i:04d}", "hostname": f"h{i}"}) for i in range(1000)]
    apply(engine, records)
    got = rows(engine)
    assert len(got) == 1000
    assert got["pc0999"]["hostname"] == "h999"
