"""RESULTS stream -> ``execution_results`` rows and ``executions`` counters.

Semantics: projection-semantics.md section 4. A result either inserts a finished
row, finishes an in-flight row, overwrites a reaped placeholder, or (a finished
row: redelivery or replay) changes nothing. Counters are bumped only for a row
that became finished now and was not already counted by the reaper, and in the
same transaction as the row, so a crash can never count a result twice.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from nats.js import JetStreamContext
from sqlalchemy import Connection, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.sqlite import insert

from ..database import insert_many
from ..schema import execution_results, executions
from . import message_fields as f
from .contract import Delivery, JetStreamProjector, decode_object

log = structlog.get_logger("projectord.projectors.results")

OUTPUT_STORE = "result_output"
_LEGACY_NAMESPACE = uuid.NAMESPACE_OID
_LEGACY_PREFIX = "kanade-issue-19/legacy-result-id:"


def legacy_result_id(request_id: str, pc_id: str) -> str:
    """The id the original derives for results of agents that send none (#19)."""
    return str(uuid.uuid5(_LEGACY_NAMESPACE, f"{_LEGACY_PREFIX}{request_id}:{pc_id}"))


@dataclass(slots=True)
class ResultRecord:
    seq: int | None
    row: dict[str, Any]
    stdout_object: str | None = None
    stderr_object: str | None = None
    notes: list[str] = field(default_factory=list)


def decode(delivery: Delivery) -> ResultRecord:
    body = decode_object(delivery)
    request_id = f.req_str(body, "request_id", non_empty=True)
    pc_id = f.req_str(body, "pc_id", non_empty=True)
    result_id = f.opt_str(body, "result_id") or legacy_result_id(request_id, pc_id)
    row = {
        "result_id": result_id,
        "request_id": request_id,
        # "" and absent both mean an ad-hoc run; NULL keeps it out of exec indexes.
        "exec_id": f.opt_str(body, "exec_id") or None,
        "pc_id": pc_id,
        "exit_code": f.req_int(body, "exit_code", f.I32),
        "stdout": f.req_str(body, "stdout"),
        "stderr": f.req_str(body, "stderr"),
        "started_at": f.req_ts(body, "started_at"),
        "finished_at": f.req_ts(body, "finished_at"),
        "job_id": f.opt_str(body, "manifest_id") or None,
        "parent_result_id": f.opt_str(body, "parent_result_id") or None,
        "recorded_at": delivery.published_at,
        "skipped": 1 if f.opt_bool(body, "skipped") else 0,
    }
    return ResultRecord(
        seq=delivery.seq,
        row=row,
        stdout_object=f.opt_str(body, "stdout_object") or None,
        stderr_object=f.opt_str(body, "stderr_object") or None,
    )


def make_enrich(ctx: Any) -> Any:
    """Overflow dereference: fetch stdout/stderr the agent put in ``result_output``.

    A failed read keeps the inline value (``""``) and is logged; it never holds
    back the ack, as in the original, because the result itself is still true.
    """
    js: JetStreamContext = ctx.js
    store_cache: dict[str, Any] = {}

    async def store() -> Any:
        if "s" not in store_cache:
            store_cache["s"] = await js.object_store(OUTPUT_STORE)
        return store_cache["s"]

    async def enrich(records: Sequence[ResultRecord]) -> None:
        for rec in records:
            for column, key in (("stdout", rec.stdout_object), ("stderr", rec.stderr_object)):
                if not key:
                    continue
                try:
                    obj = await (await store()).get(key)
                    rec.row[column] = (obj.data or b"").decode("utf-8", errors="replace")
                except Exception as exc:  # missing blob or broker hiccup: keep the inline value
                    log.warning(
                        "result_output_unavailable",
                        stream="RESULTS",
                        consumer="backend_results_projector",
                        seq=rec.seq,
                        key=key,
                        error=str(exc) or type(exc).__name__,
                    )

    return enrich


_t = execution_results.c
_upsert = insert(execution_results)
_UPSERT = _upsert.on_conflict_do_update(
    index_elements=[_t.result_id],
    set_={
        "exit_code": _upsert.excluded.exit_code,
        "stdout": _upsert.excluded.stdout,
        "stderr": _upsert.excluded.stderr,
        "finished_at": _upsert.excluded.finished_at,
        "reaped": 0,
        "request_id": _upsert.excluded.request_id,
        "job_id": func.coalesce(_upsert.excluded.job_id, _t.job_id),
        "skipped": _upsert.excluded.skipped,
    },
    # Only an unfinished or reaped row is overwritten: a finished row is final.
    where=or_(_t.finished_at.is_(None), _t.reaped == 1),
)

_e = executions.c
_BUMP = (
    update(executions)
    .where(_e.exec_id == bindparam("e_id"))
    .values(
        success_count=_e.success_count + bindparam("s"),
        failure_count=_e.failure_count + bindparam("f"),
        status=case(
            (
                _e.success_count + bindparam("s") + _e.failure_count + bindparam("f")
                >= _e.target_count,
                "completed",
            ),
            else_="running",
        ),
    )
)


def bump_counters(conn: Connection, tallies: dict[str, list[int]]) -> None:
    """Add ``{exec_id: [successes, failures]}`` to executions, whatever their status."""
    if tallies:
        conn.execute(_BUMP, [{"e_id": e, "s": s, "f": fl} for e, (s, fl) in tallies.items()])


# (result_id, finished, reaped) of the existing rows among ``ids``, as one JSON
# row: one sqlite3_step (one GIL hand-off) instead of one per row found.
_STATE = select(
    func.coalesce(
        func.json_group_array(
            func.json_array(_t.result_id, _t.finished_at.is_not(None), _t.reaped)
        ),
        "[]",
    )
).where(_t.result_id.in_(bindparam("ids", expanding=True)))


def apply(conn: Connection, records: Sequence[ResultRecord]) -> None:
    ids = list({r.row["result_id"] for r in records})
    # (finished, reaped) per existing row, read inside the write transaction.
    state: dict[str, tuple[bool, bool]] = {}
    for chunk in range(0, len(ids), 500):
        found = conn.execute(_STATE, {"ids": ids[chunk : chunk + 500]}).scalar_one()
        state.update({rid: (bool(fin), bool(reaped)) for rid, fin, reaped in json.loads(found)})

    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for rec in records:
        rid = rec.row["result_id"]
        finished, reaped = state.get(rid, (False, False))
        if finished and not reaped:
            continue  # redelivery or replay of a final row: the upsert is a no-op
        state[rid] = (True, False)
        exec_id = rec.row["exec_id"]
        if exec_id is not None and not reaped:
            tallies[exec_id][0 if rec.row["exit_code"] == 0 else 1] += 1
    insert_many(conn, _UPSERT, [r.row for r in records])
    bump_counters(conn, tallies)


PROJECTOR = JetStreamProjector(
    name="results",
    stream="RESULTS",
    durable="backend_results_projector",
    filter_subject=None,
    decode=decode,
    apply=apply,
    make_enrich=make_enrich,
)
