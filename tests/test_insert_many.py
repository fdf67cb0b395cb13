"""insert_many writes exactly what an executemany of the same statement writes."""

from __future__ import annotations

import random

from projectord.database import create_writer_engine, insert_many
from projectord.migrations import upgrade_to_head
from projectord.projectors import events, results

TS = "2026-05-20T12:00:0{}.000000+00:00"


def _result(rng: random.Random, i: int) -> dict:
    return {
        "result_id": f"r{rng.randrange(40)}",  # duplicates within and across batches
        "request_id": f"q{i}",
        "exec_id": rng.choice([None, "e1"]),
        "pc_id": "pc1",
        "exit_code": rng.choice([0, 1]),
        "stdout": f"out {i}",
        "stderr": "",
        "started_at": TS.format(0),
        "finished_at": TS.format(rng.randrange(1, 9)),
        "job_id": rng.choice([None, "inv-hw"]),
        "parent_result_id": None,
        "recorded_at": TS.format(rng.randrange(9)),
        "skipped": 0,
    }


def _started(rng: random.Random, i: int) -> dict:
    return {
        "result_id": f"r{rng.randrange(40)}",
        "request_id": f"q{i}",
        "exec_id": "e1",
        "pc_id": "pc1",
        "started_at": TS.format(0),
        "job_id": "inv-hw",
        "version": f"1.0.{i}",
        "recorded_at": TS.format(rng.randrange(9)),
        "expires_at": rng.choice([None, TS.format(9)]),
    }


def _dump(engine) -> list:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT * FROM execution_results ORDER BY result_id").all()


def test_insert_many_matches_executemany(tmp_path, monkeypatch):
    monkeypatch.setattr("projectord.database.ROWS_PER_INSERT", 7)  # several statements
    engines = []
    for name in ("many", "multi"):
        engine = create_writer_engine(tmp_path / f"{name}.db")
        upgrade_to_head(engine)
        engines.append(engine)
    rng = random.Random(5)
    for batch in range(30):
        stmt, make = rng.choice([(results._UPSERT, _result), (events._INSERT, _started)])
        rows = [make(rng, batch * 100 + i) for i in range(rng.randrange(1, 25))]
        with engines[0].begin() as conn:
            conn.execute(stmt, rows)
        with engines[1].begin() as conn:
            insert_many(conn, stmt, rows)
    assert _dump(engines[0]) == _dump(engines[1])
    assert len(_dump(engines[0])) > 20
    for engine in engines:
        engine.dispose()
