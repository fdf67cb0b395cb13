"""kill -9 at random moments during a 50 000-message load, then restart.

projectord runs as a real child process against a real nats-server; a seeded
chaos loop SIGKILLs it while it consumes a mixed load of RESULTS, EVENTS,
AUDIT and OBS_EVENTS messages and starts it again. When everything has been
consumed, the tables must equal the projection computed here, independently,
by a small pure-Python model of projection-semantics.md applied to what the
streams hold (bodies, sequences and JetStream publish times read back from
the broker).

Cross-stream order decides the sticky columns of ``execution_results``
(``recorded_at``, ``version``, ``expires_at``), so the load runs in phases
that are only ever consumed one after another:

1. started events (+ audit/obs); wait until the events checkpoint is at the end;
2. results: for in-flight rows, result-only rows, reaped placeholders, with
   duplicates (+ audit/obs); wait until the results checkpoint is at the end;
3. late started events for rows whose result came first, plus started-only
   rows (+ audit/obs).

Set CRASH_RECOVERY_SEED to replay one run's load and kill schedule.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from harness import NatsServer, checkpoint, projectord_cmd, query, spawn_projectord, wait_until
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig

pytestmark = pytest.mark.slow

TOTAL_MESSAGES = 50_000
PUBLISH_CONCURRENCY = 200

# stream -> name of its projector (the checkpoint row)
PROJECTOR_OF = {
    "EVENTS": "events",
    "RESULTS": "results",
    "AUDIT": "audit",
    "OBS_EVENTS": "obs_events",
}
DURABLE_OF = {
    "EVENTS": "backend_events_projector",
    "RESULTS": "backend_results_projector",
    "AUDIT": "backend_audit_projector",
    "OBS_EVENTS": "backend_obs_events_projector",
}

# Kills per phase: (minimum, maximum); the seeded RNG picks within.
KILLS_PER_PHASE = {1: (3, 4), 2: (3, 5), 3: (1, 2)}

# Manifests in KV ``jobs``: reaper span = timeout + max(120 s, timeout / 2).
MANIFEST_TIMEOUTS = {"inv-hw": "10m", "patch-win": "4h", "quick-check": "30s", "broken-job": "soon"}
REAPER_SPAN_S = {"inv-hw": 600 + 300, "patch-win": 4 * 3600 + 2 * 3600, "quick-check": 30 + 120}
JOBS = ("inv-hw", "patch-win", "quick-check", "broken-job", "ghost-job")

LEGACY_NAMESPACE = uuid.UUID("6ba7b812-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122 OID
REAP_NOTE = "[backend: reaped — no ExecResult before the run's deadline]"

AGENT_EPOCH_NS = int(datetime(2026, 5, 20, 8, 0, tzinfo=UTC).timestamp()) * 10**9


# --------------------------------------------------------------------------- time


def storage_ts_from_ns(ns: int) -> str:
    """Epoch nanoseconds in the storage format (fraction truncated to microseconds)."""
    secs, frac = divmod(ns, 10**9)
    t = datetime.fromtimestamp(secs, UTC).replace(microsecond=frac // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def storage_plus(storage: str, seconds: int) -> str:
    t = datetime.strptime(storage, "%Y-%m-%dT%H:%M:%S.%f+00:00") + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def agent_ts(rng: random.Random, at_s: float) -> tuple[str, str]:
    """An agent timestamp ``at_s`` after the agent epoch: (wire text, expected storage).

    Rust agents send 0, 3, 6 or 9 fraction digits and, occasionally, a non-UTC offset.
    """
    ns = AGENT_EPOCH_NS + int(at_s * 10**9) + rng.randrange(10**9)
    digits = rng.choice((9, 9, 9, 6, 3, 0))
    ns -= ns % 10 ** (9 - digits)
    offset_min = rng.choice((0, 0, 0, 0, 9 * 60, -(5 * 60 + 30)))
    secs, frac = divmod(ns, 10**9)
    tz = UTC if offset_min == 0 else timezone(timedelta(minutes=offset_min))
    local = datetime.fromtimestamp(secs, tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{frac:09d}"[:digits]
    if offset_min == 0:
        text += "Z"
    else:
        sign = "+" if offset_min > 0 else "-"
        text += f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    return text, storage_ts_from_ns(ns)


def legacy_id(request_id: str, pc_id: str) -> str:
    return str(
        uuid.uuid5(LEGACY_NAMESPACE, f"kanade-issue-19/legacy-result-id:{request_id}:{pc_id}")
    )


# --------------------------------------------------------------------------- load


@dataclass
class Message:
    stream: str
    subject: str
    data: bytes
    kind: str  # started | result | audit | obs | bad
    phase: int
    expect: dict[str, Any] | None = None  # normalised fields of a valid message
    seq: int = 0


@dataclass
class Load:
    phases: dict[int, list[Message]] = field(default_factory=dict)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    placeholders: list[dict[str, Any]] = field(default_factory=list)

    def all(self) -> list[Message]:
        return [m for phase in sorted(self.phases) for m in self.phases[phase]]


class LoadBuilder:
    """Builds the mixed load; every valid message carries its normalised fields."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pcs = [f"PC-{i:04d}" for i in range(300)]
        # ex-000..ex-029 take part at random; ex-030 sees only phase-3 started
        # events, ex-031 only started-only runs, ex-032 nothing (stays pending).
        self.exec_ids = [f"ex-{i:03d}" for i in range(33)]
        self.load = Load({1: [], 2: [], 3: []})
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def add(self, phase: int, msg: Message) -> None:
        self.load.phases[phase].append(msg)

    # ---- execution results and started events

    def pick_exec(self, *, preinserted_only: bool = False) -> str | None:
        r = self.rng.random()
        if preinserted_only or r < 0.65:
            return self.rng.choice(self.exec_ids[:30])
        if r < 0.80:
            return f"ex-orphan-{self.rng.randrange(20)}"  # no executions row
        return None  # ad-hoc run

    def new_run(self, exec_id: str | None = None, *, job: str | None = None) -> dict[str, Any]:
        n = self._next()
        started_wire, started_db = agent_ts(self.rng, n * 0.01)
        return {
            "result_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "request_id": f"req-{n:06d}",
            "exec_id": exec_id,
            "pc_id": self.rng.choice(self.pcs),
            "job": job or self.rng.choice(JOBS),
            "version": self.rng.choice(("1.0.0", "2.3.1")),
            "started_wire": started_wire,
            "started_db": started_db,
            "n": n,
        }

    def started(self, run: dict[str, Any], phase: int) -> Message:
        exec_id = run["exec_id"] or ""
        body = {
            "result_id": run["result_id"],
            "request_id": run["request_id"],
            "exec_id": exec_id,
            "pc_id": run["pc_id"],
            "started_at": run["started_wire"],
            "manifest_id": run["job"],
            "version": run["version"],
        }
        expect = {
            "result_id": run["result_id"],
            "request_id": run["request_id"],
            "exec_id": run["exec_id"],
            "pc_id": run["pc_id"],
            "started_at": run["started_db"],
            "job_id": run["job"],
            "version": run["version"],
        }
        subject = f"events.started.{exec_id or 'adhoc'}.{run['pc_id']}"
        return Message("EVENTS", subject, json.dumps(body).encode(), "started", phase, expect)

    def result(
        self,
        run: dict[str, Any],
        *,
        legacy: bool = False,
        parent: str | None = None,
        omit_manifest: bool = False,
        adhoc_empty_exec: bool = False,
    ) -> Message:
        rng = self.rng
        roll = rng.random()
        if roll < 0.75:
            exit_code, skipped = 0, False
        elif roll < 0.88:
            exit_code, skipped = rng.choice((1, 2, 255, -1073741510)), False
        elif roll < 0.94:
            exit_code, skipped = rng.choice((122, 124, 125, 126, 127)), True
        elif roll < 0.97:
            exit_code, skipped = 123, False  # refused unsigned: a failure, not a skip
        else:
            exit_code, skipped = 124, False  # older agent: no flag, not a skip
        stdout = rng.choice(
            (
                f"ok {run['n']}\n",
                "✓ inventory — ünïcödé\nline 2\n",
                "",
                json.dumps({"cpu": run["n"] % 64, "disks": ["C:", "D:"]}),
            )
        )
        stderr = rng.choice(("", "", "", "warning: slow disk\n"))
        finished_wire, finished_db = agent_ts(rng, run["n"] * 0.01 + 30)
        body: dict[str, Any] = {}
        if not legacy:
            body["result_id"] = run["result_id"]
        body.update(
            request_id=run["request_id"],
            pc_id=run["pc_id"],
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            started_at=run["started_wire"],
            finished_at=finished_wire,
        )
        if skipped:
            body["skipped"] = True
        if run["exec_id"] is not None:
            body["exec_id"] = run["exec_id"]
        elif adhoc_empty_exec:
            body["exec_id"] = ""
        if parent is not None:
            body["parent_result_id"] = parent
        if not omit_manifest:
            body["manifest_id"] = run["job"]
        rid = legacy_id(run["request_id"], run["pc_id"]) if legacy else run["result_id"]
        expect = {
            "result_id": rid,
            "request_id": run["request_id"],
            "exec_id": run["exec_id"],
            "pc_id": run["pc_id"],
            "exit_code": exit_code,
            "stdout": stdout,
            "stderr": stderr,
            "started_at": run["started_db"],
            "finished_at": finished_db,
            "job_id": None if omit_manifest else run["job"],
            "parent_result_id": parent,
            "skipped": 1 if skipped else 0,
        }
        subject = f"results.{run['request_id']}"
        return Message("RESULTS", subject, json.dumps(body).encode(), "result", 2, expect)

    @staticmethod
    def replay(msg: Message, phase: int) -> Message:
        """The same bytes sent again (agent re-send after a reconnect)."""
        return Message(msg.stream, msg.subject, msg.data, msg.kind, phase, msg.expect)

    def changed_replay(self, msg: Message) -> Message:
        """A re-send of a result with other output: a finished row must not change."""
        body = json.loads(msg.data)
        body["exit_code"] = 99
        body["stdout"] = "replayed with different output\n"
        body.pop("skipped", None)
        expect = dict(msg.expect or {}, exit_code=99, stdout=body["stdout"], skipped=0)
        return Message(msg.stream, msg.subject, json.dumps(body).encode(), "result", 2, expect)

    # ---- audit and obs

    def audit(self, phase: int) -> Message:
        rng = self.rng
        n = self._next()
        actor, action = rng.choice(
            (
                ("scheduler", "exec"),
                ("operator", "job_upsert"),
                ("operator", "freeze_set"),
                ("self-update", "agent_rollout"),
            )
        )
        target = rng.choice(("inv-hw", "patch-win", None, "grp/ünï"))
        payload = rng.choice(
            (
                {"exec_id": f"ex-{n}", "target_count": n % 50, "subjects": ["commands.all"]},
                {"sub": "alice", "source": "cli", "nested": {"n": n, "ok": True, "x": 1.5}},
                [n, "two", None],
                f"note {n} — ✓",
                n,
                None,
            )
        )
        wire, db = agent_ts(rng, n * 0.01)
        body = {
            "actor": actor,
            "action": action,
            "target": target,
            "payload": payload,
            "occurred_at": wire,
        }
        if rng.random() < 0.1:
            body["extra_key_from_newer_publisher"] = {"ignored": True}
        subject = f"audit.{actor}.{action}" + (f".{target}" if target == "inv-hw" else "")
        expect = {
            "actor": actor,
            "action": action,
            "target": target,
            "payload": payload,
            "occurred_at": db,
        }
        return Message("AUDIT", subject, json.dumps(body).encode(), "audit", phase, expect)

    def obs(self, phase: int, previous: list[Message]) -> Message:
        rng = self.rng
        roll = rng.random()
        if previous and roll < 0.12:
            # The same record re-sent, sometimes with another time and payload:
            # (pc_id, source, event_record_id) decides, the first one stays.
            old = rng.choice(previous)
            body = json.loads(old.data)
            if body.get("event_record_id") is not None:
                if rng.random() < 0.5:
                    return self.replay(old, phase)
                wire, db = agent_ts(rng, self._next() * 0.01)
                body["at"] = wire
                body["payload"] = {"resent": True}
                expect = dict(old.expect or {}, at=db, payload={"resent": True})
                data = json.dumps(body).encode()
                return Message("OBS_EVENTS", old.subject, data, "obs", phase, expect)
        n = self._next()
        pc = rng.choice(self.pcs)
        kind = rng.choice(("logon", "logoff", "boot", "idle", "agent_update", "custom_kind_x"))
        source = rng.choice(("winlog:Security", "winlog:System", "agent:startup"))
        wire, db = agent_ts(rng, n * 0.01)
        body: dict[str, Any] = {"pc_id": pc, "at": wire, "kind": kind, "source": source}
        record_id: str | None = None
        if roll < 0.9:
            record_id = str(n)
            body["event_record_id"] = record_id
        payload = rng.choice(({"logon_type": n % 11, "user": "ü"}, None, [1, 2], "text"))
        if payload is not None:
            body["payload"] = payload
        expect = {
            "pc_id": pc,
            "at": db,
            "kind": kind,
            "source": source,
            "event_record_id": record_id,
            "payload": payload,
        }
        return Message("OBS_EVENTS", f"obs.{pc}", json.dumps(body).encode(), "obs", phase, expect)

    # ---- contract violations (each must land in projector_rejects)

    def bad(self, stream: str, phase: int, i: int) -> Message:
        good_started = json.loads(self.started(self.new_run("ex-000"), phase).data)
        good_result = json.loads(self.result(self.new_run("ex-000")).data)
        audit = json.loads(self.audit(phase).data)
        obs = json.loads(self.obs(phase, []).data)
        no = lambda d, k: {x: v for x, v in d.items() if x != k}  # noqa: E731
        variants: dict[str, list[tuple[str, bytes]]] = {
            "EVENTS": [
                ("events.started.ex-000.PC-0001", json.dumps(no(good_started, "version"))),
                (
                    "events.started.ex-000.PC-0001",
                    json.dumps({**good_started, "started_at": "2026-05-20T12:00:00"}),
                ),
                ("events.started.ex-000.PC-0001", "not json at all"),
                ("events.started.ex-000.PC-0001", json.dumps([good_started])),
                (
                    "events.started.ex-000.PC-0001",
                    json.dumps({**good_started, "pc_id": 17}),
                ),
            ],
            "RESULTS": [
                ("results.bad", json.dumps(no(good_result, "exit_code"))),
                ("results.bad", json.dumps({**good_result, "exit_code": "0"})),
                ("results.bad", json.dumps({**good_result, "finished_at": "yesterday"})),
                ("results.bad", b"\xff\xfe\x00 not utf-8"),
                ("results.bad", json.dumps(no(good_result, "pc_id"))),
            ],
            "AUDIT": [
                ("audit.operator.exec", json.dumps(no(audit, "payload"))),
                ("audit.operator.exec", json.dumps(no(audit, "occurred_at"))),
                ("audit.operator.exec", json.dumps({**audit, "actor": 42})),
                ("audit.operator.exec", "{truncated"),
            ],
            "OBS_EVENTS": [
                ("obs.PC-0001", json.dumps(no(obs, "kind"))),
                ("obs.PC-0001", json.dumps({**obs, "at": 1779278400})),
                ("obs.PC-0001", json.dumps({**obs, "pc_id": None})),
            ],
        }
        subject, data = variants[stream][i % len(variants[stream])]
        raw = data if isinstance(data, bytes) else data.encode()
        return Message(stream, subject, raw, "bad", phase)

    # ---- the whole load

    def build(self) -> Load:
        rng = self.rng
        n_a, n_b, n_c, n_d, n_e, n_f = 12_000, 2_000, 4_000, 1_000, 30, 200

        # Phase 1: started events for rows that finish in phase 2 (A), rows that
        # stay in flight (B); duplicates; violations.
        runs_a = [self.new_run(self.pick_exec()) for _ in range(n_a)]
        runs_b = [self.new_run(self.pick_exec()) for _ in range(n_b)]
        # ex-031 only ever sees started-only runs: it is promoted, never counted.
        runs_b += [self.new_run("ex-031") for _ in range(20)]
        started_1 = [self.started(r, 1) for r in runs_a + runs_b]
        for m in list(started_1):
            if rng.random() < 500 / len(started_1):
                started_1.append(self.replay(m, 1))
        started_1 += [self.bad("EVENTS", 1, i) for i in range(5)]

        # Phase 2: results.
        results: list[Message] = []
        a_ids = [r["result_id"] for r in runs_a]
        for r in runs_a:
            parent = rng.choice(a_ids) if rng.random() < 0.02 else None  # sticky: stays NULL
            results.append(self.result(r, parent=parent, omit_manifest=rng.random() < 0.15))
        for i in range(n_c):  # result only: never a started event
            r = self.new_run(self.pick_exec())
            results.append(
                self.result(
                    r,
                    legacy=i < 400,
                    parent=rng.choice(a_ids) if 400 <= i < 600 else None,
                    omit_manifest=rng.random() < 0.2,
                    adhoc_empty_exec=r["exec_id"] is None and rng.random() < 0.5,
                )
            )
        runs_d = [self.new_run(self.pick_exec()) for _ in range(n_d)]
        results += [self.result(r) for r in runs_d]
        # Reaped placeholders (inserted into the DB before the first start).
        runs_e = [self.new_run(self.pick_exec(preinserted_only=True)) for _ in range(n_e)]
        for r in runs_e:
            recorded = storage_ts_from_ns(AGENT_EPOCH_NS - 3600 * 10**9 + r["n"] * 1000)
            self.load.placeholders.append(
                {
                    "result_id": r["result_id"],
                    "request_id": r["request_id"],
                    "exec_id": r["exec_id"],
                    "pc_id": r["pc_id"],
                    "exit_code": -1,
                    "stdout": "",
                    "stderr": REAP_NOTE,
                    "started_at": r["started_db"],
                    "finished_at": storage_plus(r["started_db"], 3600),
                    "recorded_at": recorded,
                    "job_id": "inv-hw",
                    "version": "0.9.0",
                    "reaped": 1,
                    "expires_at": storage_plus(recorded, 900),
                    "parent_result_id": None,
                    "skipped": 0,
                }
            )
            results.append(self.result(r, omit_manifest=rng.random() < 0.5))
        originals = list(results)
        results += [self.replay(rng.choice(originals), 2) for _ in range(1_500)]
        results += [self.changed_replay(rng.choice(originals)) for _ in range(300)]
        results += [self.bad("RESULTS", 2, i) for i in range(5)]

        # Phase 3: started events after their result (no-ops), started-only rows
        # (F), late re-sends of phase-1 started events, violations.
        runs_f = [self.new_run(self.pick_exec()) for _ in range(n_f)]
        runs_f += [self.new_run("ex-030") for _ in range(3)]  # ex-030: pending until phase 3
        started_3 = [self.started(r, 3) for r in runs_d + runs_f]
        started_3 += [self.replay(rng.choice(started_1[: n_a + n_b]), 3) for _ in range(100)]
        started_3 += [self.bad("EVENTS", 3, i) for i in range(3)]

        # Audit and obs fill the load up to exactly TOTAL_MESSAGES.
        rest = TOTAL_MESSAGES - len(started_1) - len(results) - len(started_3)
        n_audit = rest * 45 // 100
        n_obs = rest - n_audit
        split = {1: 40, 2: 45, 3: 15}
        obs_so_far: list[Message] = []
        side: dict[int, list[Message]] = {1: [], 2: [], 3: []}
        audit_left, obs_left = n_audit, n_obs
        for phase in (1, 2, 3):
            na = audit_left if phase == 3 else n_audit * split[phase] // 100
            no_ = obs_left if phase == 3 else n_obs * split[phase] // 100
            audit_left -= na
            obs_left -= no_
            side[phase] += [self.bad("AUDIT", phase, i) for i in range(2)]
            side[phase] += [self.audit(phase) for _ in range(na - 2)]
            side[phase] += [self.bad("OBS_EVENTS", phase, i) for i in range(2)]
            for _ in range(no_ - 2):
                m = self.obs(phase, obs_so_far)
                obs_so_far.append(m)
                side[phase].append(m)

        for phase, msgs in ((1, started_1), (2, results), (3, started_3)):
            msgs = msgs + side[phase]
            rng.shuffle(msgs)
            self.load.phases[phase] = msgs

        # Executions rows, as a dispatch would have created them. Target counts
        # are set around the number of results each execution will count.
        will_count: Counter[str] = Counter()
        reaped = {p["result_id"] for p in self.load.placeholders}
        seen: set[str] = set()
        for m in originals:
            e = m.expect
            assert e is not None
            if e["result_id"] in seen:
                continue
            seen.add(e["result_id"])
            if e["exec_id"] and e["result_id"] not in reaped:
                will_count[e["exec_id"]] += 1
        reaped_per_exec = Counter(p["exec_id"] for p in self.load.placeholders)
        for i, exec_id in enumerate(self.exec_ids):
            status = "pending"
            if 24 <= i <= 26:
                status = "expired"  # a late result revives an expired execution
            if exec_id in reaped_per_exec:
                status = "running"
            target = max(1, will_count[exec_id] + rng.choice((0, 0, 3, -2, 1)))
            if i >= 30:
                target = 5
            self.load.executions[exec_id] = {
                "exec_id": exec_id,
                "job_id": "inv-hw",
                "version": "1.0.0",
                "initiated_by": "scheduler",
                "initiated_at": "2026-05-20T07:59:00.000000+00:00",
                "target_count": target,
                "success_count": 0,
                "failure_count": reaped_per_exec[exec_id],  # the reaper counted those
                "status": status,
            }
        assert sum(len(p) for p in self.load.phases.values()) == TOTAL_MESSAGES
        return self.load


# --------------------------------------------------------------------------- model


RESULT_COLUMNS = (
    "result_id",
    "request_id",
    "exec_id",
    "pc_id",
    "exit_code",
    "stdout",
    "stderr",
    "started_at",
    "finished_at",
    "recorded_at",
    "job_id",
    "version",
    "reaped",
    "expires_at",
    "parent_result_id",
    "skipped",
)
EXEC_COLUMNS = (
    "exec_id",
    "job_id",
    "version",
    "initiated_by",
    "initiated_at",
    "target_count",
    "success_count",
    "failure_count",
    "status",
)


def canon_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass
class Expected:
    results: dict[str, dict[str, Any]]
    executions: dict[str, dict[str, Any]]
    audit: list[tuple[Any, ...]]
    obs: list[tuple[Any, ...]]
    rejects: list[tuple[str, str, int]]


def project(load: Load, published_at: dict[tuple[str, int], str]) -> Expected:
    """projection-semantics.md sections 4-7, one message at a time, in stream order.

    The phases were consumed one after another, so applying phase 1's EVENTS,
    then RESULTS, then phase 3's EVENTS is the order the tables saw.
    """
    rows: dict[str, dict[str, Any]] = {p["result_id"]: dict(p) for p in load.placeholders}
    execs = {k: dict(v) for k, v in load.executions.items()}
    audit: list[tuple[Any, ...]] = []
    obs_keys: set[tuple[str, str, str]] = set()
    obs: list[tuple[Any, ...]] = []
    rejects: list[tuple[str, str, int]] = []

    def by_seq(msgs: list[Message]) -> list[Message]:
        return sorted(msgs, key=lambda m: m.seq)

    everything = load.all()
    per_stream = {s: by_seq([m for m in everything if m.stream == s]) for s in PROJECTOR_OF}

    def started(m: Message) -> None:
        e = m.expect
        assert e is not None
        if e["result_id"] not in rows:
            recorded = published_at[("EVENTS", m.seq)]
            span = REAPER_SPAN_S.get(e["job_id"])
            rows[e["result_id"]] = {
                **e,
                "exit_code": None,
                "stdout": "",
                "stderr": "",
                "finished_at": None,
                "recorded_at": recorded,
                "reaped": 0,
                "expires_at": None if span is None else storage_plus(recorded, span),
                "parent_result_id": None,
                "skipped": 0,
            }
        ex = execs.get(e["exec_id"] or "")
        if ex is not None and ex["status"] == "pending":
            ex["status"] = "running"

    def result(m: Message) -> None:
        e = m.expect
        assert e is not None
        rid = e["result_id"]
        old = rows.get(rid)
        if old is None:
            rows[rid] = {
                **e,
                "recorded_at": published_at[("RESULTS", m.seq)],
                "version": None,
                "reaped": 0,
                "expires_at": None,
            }
            was_reaped = False
        elif old["finished_at"] is None or old["reaped"] == 1:
            was_reaped = old["reaped"] == 1
            old.update(
                exit_code=e["exit_code"],
                stdout=e["stdout"],
                stderr=e["stderr"],
                finished_at=e["finished_at"],
                reaped=0,
                request_id=e["request_id"],
                job_id=e["job_id"] if e["job_id"] is not None else old["job_id"],
                skipped=e["skipped"],
            )
        else:
            return  # finished: a redelivery or replay changes nothing
        ex = execs.get(e["exec_id"] or "")
        if ex is not None and not was_reaped:
            ok = 1 if e["exit_code"] == 0 else 0
            ex["success_count"] += ok
            ex["failure_count"] += 1 - ok
            done = ex["success_count"] + ex["failure_count"] >= ex["target_count"]
            ex["status"] = "completed" if done else "running"

    order = [m for m in per_stream["EVENTS"] if m.phase == 1]
    order += per_stream["RESULTS"]
    order += [m for m in per_stream["EVENTS"] if m.phase == 3]
    for m in order:
        if m.kind == "bad":
            rejects.append((PROJECTOR_OF[m.stream], m.stream, m.seq))
        elif m.kind == "started":
            started(m)
        else:
            result(m)
    for m in per_stream["AUDIT"]:
        if m.kind == "bad":
            rejects.append(("audit", "AUDIT", m.seq))
            continue
        e = m.expect
        assert e is not None
        audit.append(
            (
                e["actor"],
                e["action"],
                e["target"],
                canon_json(e["payload"]),
                e["occurred_at"],
                m.seq,
            )
        )
    for m in per_stream["OBS_EVENTS"]:
        if m.kind == "bad":
            rejects.append(("obs_events", "OBS_EVENTS", m.seq))
            continue
        e = m.expect
        assert e is not None
        rid = e["event_record_id"]
        if rid is not None:
            key = (e["pc_id"], e["source"], rid)
            if key in obs_keys:
                continue
            obs_keys.add(key)
        obs.append((e["pc_id"], e["at"], e["kind"], e["source"], rid, canon_json(e["payload"])))
    return Expected(rows, execs, audit, sorted(obs, key=repr), sorted(rejects))


# --------------------------------------------------------------------------- broker


async def read_stream(js: Any, stream: str, last_seq: int) -> dict[int, tuple[str, bytes, int]]:
    """Every message of ``stream``: seq -> (subject, data, publish time in epoch ns).

    Sequence and publish time come from the delivery's reply subject
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<nanos>.<pending>``
    (or its v2 form with domain and account hash), with no float conversion.
    """
    sub = await js.pull_subscribe(
        "",
        durable=None,
        stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
    )
    out: dict[int, tuple[str, bytes, int]] = {}
    try:
        while len(out) < last_seq:
            for m in await sub.fetch(1000, timeout=5):
                tokens = m.reply.split(".")
                if len(tokens) == 9:
                    seq, nanos = int(tokens[5]), int(tokens[7])
                else:
                    seq, nanos = int(tokens[7]), int(tokens[9])
                out[seq] = (m.subject, m.data, nanos)
    finally:
        await sub.unsubscribe()
    return out


async def raw_publish_time(nc: Any, stream: str, seq: int) -> str:
    """The stream's own RFC 3339 time of one message, via the raw MSG.GET API."""
    reply = await nc.request(
        f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": seq}).encode(), timeout=5
    )
    return json.loads(reply.data)["message"]["time"]


def rfc3339_nanos_to_storage(text: str) -> str:
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z", text)
    assert m, text
    return f"{m.group(1)}.{(m.group(2) or '').ljust(9, '0')[:6]}+00:00"


# --------------------------------------------------------------------------- process


class Supervisor:
    """projectord as a child process that the chaos loop kills and restarts."""

    def __init__(self, server: NatsServer, db_path: Path, log_path: Path) -> None:
        self.server = server
        self.db_path = db_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_offset = 0
        self.restarting = False
        self.starts = 0
        self.kills: list[dict[str, Any]] = []

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = spawn_projectord(self.server, self.db_path, log_path=self.log_path)
        self.starts += 1
        self.restarting = False

    def running(self) -> bool:
        """True once the current process logged that every projector runs."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self.log_offset)
            return b'"projectord_running"' in fh.read()

    def kill(self, lag: int) -> None:
        assert self.proc is not None
        self.restarting = True
        alive = self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills.append({"alive": alive, "lag": lag})

    def check_alive(self) -> None:
        """Outside a kill/restart window the process must be up (it never exits by itself)."""
        assert self.proc is not None
        if not self.restarting and self.proc.poll() is not None:
            tail = self.log_path.read_bytes()[-3000:].decode(errors="replace")
            raise AssertionError(f"projectord exited by itself ({self.proc.returncode}):\n{tail}")

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def checkpoints(db_path: Path) -> dict[str, int]:
    return {stream: checkpoint(db_path, p) for stream, p in PROJECTOR_OF.items()}


async def wait_projected(
    sup: Supervisor, js: Any, published: dict[str, int], stall_s: float = 30
) -> None:
    """Wait until every checkpoint reaches what was published.

    projectord commits every few milliseconds while it has work; if no
    checkpoint moves for ``stall_s`` seconds it is stuck, and the durables'
    state says why (for example messages handed to a killed process that
    JetStream will only redeliver after ack_wait).
    """
    last: dict[str, int] = {}
    since = time.monotonic()
    while True:
        sup.check_alive()
        cps = checkpoints(sup.db_path)
        if all(cps[s] >= published[s] for s in PROJECTOR_OF):
            return
        if cps != last or sup.restarting:
            last, since = cps, time.monotonic()
        elif time.monotonic() - since > stall_s:
            durables = {}
            for stream, durable in DURABLE_OF.items():
                info = await js.consumer_info(stream, durable)
                durables[stream] = {
                    "delivered": info.delivered.stream_seq,
                    "ack_floor": info.ack_floor.stream_seq,
                    "num_ack_pending": info.num_ack_pending,
                    "num_pending": info.num_pending,
                }
            raise AssertionError(
                f"projectord made no progress for {stall_s}s: checkpoints {cps},"
                f" published {published}, durables {durables}"
            )
        await asyncio.sleep(0.1)


def lag_of(sup: Supervisor, published: dict[str, int]) -> int:
    """Messages published but not yet checkpointed, over all projected streams."""
    cps = checkpoints(sup.db_path)
    return sum(max(0, published[s] - cps[s]) for s in PROJECTOR_OF)


async def chaos(
    sup: Supervisor,
    rng: random.Random,
    kills: int,
    published: dict[str, int],
    done: asyncio.Event,
) -> None:
    """SIGKILL projectord ``kills`` times at random moments, restarting it each time."""
    for _ in range(kills):
        if rng.random() < 0.2:
            # Sometimes early: during start-up, migrations or durable reconciliation.
            await asyncio.sleep(rng.uniform(0.05, 0.6))
        else:
            # Mostly mid-consumption: once it has committed something new.
            base = sum(checkpoints(sup.db_path).values())
            for _ in range(200):
                if done.is_set() or sum(checkpoints(sup.db_path).values()) > base:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            # Then wait (up to 2 s) for a moment with a backlog: projectord often
            # keeps up with this publisher, and a kill with nothing in flight would
            # test a restart only.
            for _ in range(200):
                if done.is_set() or lag_of(sup, published) > 0:
                    break
                await asyncio.sleep(0.01)
        if done.is_set():
            return
        sup.kill(lag_of(sup, published))
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        sup.start()


async def publish(js: Any, msgs: list[Message], published: dict[str, int]) -> None:
    for i in range(0, len(msgs), PUBLISH_CONCURRENCY):
        chunk = msgs[i : i + PUBLISH_CONCURRENCY]
        acks = await asyncio.gather(
            *(js.publish(m.subject, m.data, stream=m.stream, timeout=10) for m in chunk)
        )
        for m, ack in zip(chunk, acks, strict=True):
            assert ack.stream == m.stream and not ack.duplicate
            m.seq = ack.seq
            published[m.stream] = max(published[m.stream], ack.seq)


def prepare_database(db_path: Path, load: Load) -> None:
    """`projectord migrate`, then rows a dispatch and the reaper would have written."""
    out = subprocess.run(
        projectord_cmd("migrate", "--db", str(db_path)), capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr.decode()
    conn = sqlite3.connect(db_path)
    try:
        for row in load.executions.values():
            conn.execute(
                f"INSERT INTO executions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
        for row in load.placeholders:
            conn.execute(
                f"INSERT INTO execution_results ({', '.join(row)})"
                f" VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
        conn.commit()
    finally:
        conn.close()


# --------------------------------------------------------------------------- comparison


def diff_keyed(
    table: str, actual: dict[Any, Any], expected: dict[Any, Any], limit: int = 5
) -> list[str]:
    problems = []
    missing = sorted(set(expected) - set(actual), key=repr)
    extra = sorted(set(actual) - set(expected), key=repr)
    if missing:
        problems.append(f"{table}: {len(missing)} rows missing, e.g. {missing[:limit]}")
    if extra:
        problems.append(f"{table}: {len(extra)} unexpected rows, e.g. {extra[:limit]}")
    differ = [k for k in expected if k in actual and actual[k] != expected[k]]
    if differ:
        examples = []
        for k in differ[:limit]:
            a, e = actual[k], expected[k]
            if isinstance(a, dict):
                cols = {c: (a[c], e[c]) for c in e if a[c] != e[c]}
                examples.append(f"{k}: (actual, expected) {cols}")
            else:
                examples.append(f"{k}: actual {a!r} expected {e!r}")
        problems.append(f"{table}: {len(differ)} rows differ, e.g. " + "; ".join(examples))
    return problems


def diff_multiset(table: str, actual: list[Any], expected: list[Any], limit: int = 5) -> list[str]:
    a, e = Counter(actual), Counter(expected)
    problems = []
    if e - a:
        items = list((e - a).items())
        problems.append(f"{table}: {sum((e - a).values())} rows missing, e.g. {items[:limit]}")
    if a - e:
        items = list((a - e).items())
        problems.append(f"{table}: {sum((a - e).values())} rows unexpected, e.g. {items[:limit]}")
    return problems


def actual_tables(db_path: Path) -> dict[str, Any]:
    results = {
        r[0]: dict(zip(RESULT_COLUMNS, r, strict=True))
        for r in query(db_path, f"SELECT {', '.join(RESULT_COLUMNS)} FROM execution_results")
    }
    executions = {
        r[0]: dict(zip(EXEC_COLUMNS, r, strict=True))
        for r in query(db_path, f"SELECT {', '.join(EXEC_COLUMNS)} FROM executions")
    }

    def payload(text: str | None) -> str:
        return canon_json(None if text is None else json.loads(text))

    audit = [
        (actor, action, target, payload(p), occurred, seq)
        for actor, action, target, p, occurred, seq in query(
            db_path,
            "SELECT actor, action, target, payload, occurred_at, stream_seq FROM audit_log",
        )
    ]
    obs = [
        (pc, at, kind, source, rid, payload(p))
        for pc, at, kind, source, rid, p in query(
            db_path,
            "SELECT pc_id, at, kind, source, event_record_id, payload FROM obs_events",
        )
    ]
    rejects = query(db_path, "SELECT projector, stream, stream_seq FROM projector_rejects")
    return {
        "results": results,
        "executions": executions,
        "audit": audit,
        "obs": obs,
        "rejects": [tuple(r) for r in rejects],
    }


# --------------------------------------------------------------------------- test


async def test_kill9_during_load_then_restart_converges_to_the_model(
    nats_server: NatsServer, nc: Any, js: Any, db_path: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CRASH_RECOVERY_SEED") or random.randrange(2**32))
    print(f"crash-recovery seed: {seed} (replay with CRASH_RECOVERY_SEED={seed})")
    rng = random.Random(seed)
    load = LoadBuilder(rng).build()

    # Manifests first: the events projector reads execute.timeout for expires_at.
    kv = await js.create_key_value(KeyValueConfig(bucket="jobs", history=5))
    for job, timeout in MANIFEST_TIMEOUTS.items():
        manifest = {
            "id": job,
            "version": "1.0.0",
            "execute": {"shell": "powershell", "script": "Get-Date", "timeout": timeout},
        }
        await kv.put(job, json.dumps(manifest).encode())
    prepare_database(db_path, load)

    sup = Supervisor(nats_server, db_path, tmp_path / "projectord.log")
    published = dict.fromkeys(PROJECTOR_OF, 0)
    try:
        sup.start()

        async def durables_exist() -> bool:
            try:
                for stream, durable in DURABLE_OF.items():
                    await js.consumer_info(stream, durable)
            except Exception:
                return False
            return True

        await wait_until(durables_exist, timeout=30)

        for phase in (1, 2, 3):
            done = asyncio.Event()
            kills = rng.randint(*KILLS_PER_PHASE[phase])
            chaos_task = asyncio.create_task(chaos(sup, rng, kills, published, done))
            await publish(js, load.phases[phase], published)
            # The phase's streams must be fully projected before the next phase.
            await wait_projected(sup, js, published)
            done.set()
            await chaos_task

        # One last restart, everything consumed, then a graceful stop.
        sup.kill(0)
        sup.start()
        await wait_until(sup.running, timeout=30)
        await wait_projected(sup, js, published)
        assert checkpoints(db_path) == published
        assert sup.terminate() == 0, "projectord must exit 0 on SIGTERM"
    finally:
        sup.ensure_dead()

    mid_load_kills = [k for k in sup.kills if k["alive"] and k["lag"] > 0]
    print(f"starts={sup.starts} kills={len(sup.kills)} mid-load kills={len(mid_load_kills)}")
    assert len(mid_load_kills) >= 3, f"the chaos loop must kill mid-load: {sup.kills}"
    assert checkpoints(db_path) == published

    # What the streams hold is exactly what was published, with its publish time.
    published_at: dict[tuple[str, int], str] = {}
    by_key = {(m.stream, m.seq): m for m in load.all()}
    assert len(by_key) == TOTAL_MESSAGES
    for stream, last in published.items():
        stored = await read_stream(js, stream, last)
        assert sorted(stored) == sorted(seq for (s, seq) in by_key if s == stream)
        for seq, (subject, data, nanos) in stored.items():
            m = by_key[(stream, seq)]
            assert (subject, data) == (m.subject, m.data), (stream, seq)
            published_at[(stream, seq)] = storage_ts_from_ns(nanos)
        for seq in rng.sample(sorted(stored), 3):
            raw = await raw_publish_time(nc, stream, seq)
            assert rfc3339_nanos_to_storage(raw) == published_at[(stream, seq)]

    expected = project(load, published_at)
    actual = actual_tables(db_path)
    problems: list[str] = []
    problems += diff_keyed("execution_results", actual["results"], expected.results)
    problems += diff_keyed("executions", actual["executions"], expected.executions)
    problems += diff_multiset("audit_log", actual["audit"], expected.audit)
    problems += diff_multiset("obs_events", actual["obs"], expected.obs)
    problems += diff_multiset("projector_rejects", actual["rejects"], expected.rejects)
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)

    # No duplicates anywhere, and the load exercised every path it claims to.
    assert len(actual["audit"]) == len({row[-1] for row in actual["audit"]})
    n_bad = sum(m.kind == "bad" for m in load.all())
    assert len(actual["rejects"]) == len(set(actual["rejects"])) == n_bad == 25
    rows = expected.results.values()
    assert sum(r["finished_at"] is None for r in rows) >= 2_000  # in flight
    assert sum(r["version"] is None and r["finished_at"] is not None for r in rows) >= 4_500
    assert sum(r["expires_at"] is not None for r in rows) >= 5_000
    statuses = Counter(e["status"] for e in expected.executions.values())
    assert statuses["completed"] and statuses["running"] and statuses["pending"], statuses
