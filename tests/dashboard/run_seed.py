"""Runs for the Activity, Result, Executions and Audit page tests.

The shared stack has one execution (the per_pc fire) whose runs all finished. These add
what the pages must also show, as agents and the scheduler would have produced it:

* a month of executions of a job no schedule uses (``software-audit``), each answered
  by its PCs a day or more ago (so the last-24-hours views stay the stack's own), one
  of them stuck with a PC that never finished;
* an execution under way (two PCs running, one silent) and one nobody answered yet;
* an execution of the stack's job whose three runs are the edge cases: a failure with
  output too large for a message (sent through the ``result_output`` object store, as
  agents do), a run with no output at all, and a run the agent skipped;
* an ad-hoc run (no execution) and a finalize-hook run of the large failure.

Execution rows are written with the scheduler's own record function (the fleet freeze
holds every real fire); everything else goes through the broker and the projectors.
Seeding one stack twice is a no-op, so every page's test module may ask for it.
Finished runs of the last day are all of the stack's job: other pages' tests rely on
the last day holding one job's runs, and on the schedules' job having no run in flight.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from projectord.database import Writer, create_writer_engine
from projectord.scheduler.records import insert_execution

NAMESPACE = uuid.UUID("6f1c3a52-9a0e-4b7d-8c55-0d3f1e2a7b90")
AUDIT_JOB, AUDIT_VERSION = "software-audit", "3.0.1"
STACK_JOB, STACK_VERSION = "inventory-hw", "1.2.0"
HISTORY = 30  # finished executions of AUDIT_JOB, one every day
PER_EXECUTION = 3  # PCs each history execution targets
BIG_LINES = 6000  # lines of the large stdout (well above the 256 KiB message limit)
SEARCH_TOKEN = "unlicensed-copy"  # in a few history outputs, for the stdout filter


def sid(name: str) -> str:
    """A fixed id for a seeded object, so tests can name it."""
    return str(uuid.uuid5(NAMESPACE, name))


@dataclass
class Run:
    """One PC's run as the agent reports it (no exit code: still running)."""

    name: str
    pc_id: str
    job_id: str
    version: str
    started_at: datetime
    exec_id: str | None = None
    exit_code: int | None = None
    finished_at: datetime | None = None
    stdout: str = ""
    stderr: str = ""
    skipped: bool = False
    parent: str | None = None
    overflow: bool = False  # stdout through the object store

    @property
    def result_id(self) -> str:
        return sid(f"result:{self.name}")

    @property
    def request_id(self) -> str:
        return sid(f"request:{self.exec_id or self.name}")


@dataclass
class Execution:
    name: str
    job_id: str
    version: str
    initiated_at: datetime
    target_count: int
    runs: list[Run] = field(default_factory=list)

    @property
    def exec_id(self) -> str:
        return sid(f"exec:{self.name}")


@dataclass
class Seed:
    """What was seeded, by name."""

    executions: dict[str, Execution]
    runs: dict[str, Run]

    def run(self, name: str) -> Run:
        return self.runs[name]


def _wire(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def big_stdout() -> str:
    rows = [
        f"{n:05d}  HKLM\\SOFTWARE\\Vendor\\Product{n % 97:02d}"
        f"  installed 2026-0{1 + n % 9}-1{n % 10}"
        for n in range(BIG_LINES)
    ]
    return "Inventory of installed software\r\n" + "\r\n".join(rows) + "\r\nend of inventory\r\n"


def plan(pcs: list[str], now: datetime) -> Seed:
    """Every seeded execution and run, relative to ``now``."""
    execs: list[Execution] = []
    runs: list[Run] = []

    for i in range(HISTORY):
        at = now - timedelta(hours=26 + 24 * i, minutes=7 * i)
        e = Execution(f"history-{i:02d}", AUDIT_JOB, AUDIT_VERSION, at, PER_EXECUTION)
        for k in range(PER_EXECUTION):
            pc = pcs[(PER_EXECUTION * i + k) % len(pcs)]
            started = at + timedelta(seconds=4 + 3 * k)
            run = Run(f"{e.name}-{k}", pc, AUDIT_JOB, AUDIT_VERSION, started, e.exec_id)
            if i == 0 and k == 2:
                pass  # stuck: started and never finished
            elif i % 7 == 3 and k == 1:
                run.exit_code, run.finished_at = 1, started + timedelta(seconds=41)
                run.stderr = f"Get-Package : Access is denied on {pc}\r\n"
            else:
                run.exit_code, run.finished_at = 0, started + timedelta(seconds=12 + 9 * k)
                extra = f"  Contoso Suite 2.1 ({SEARCH_TOKEN})\r\n" if i % 10 == 4 else ""
                run.stdout = (
                    f"Installed software on {pc}:\r\n  7-Zip 23.01\r\n{extra}  Git 2.44\r\n"
                )
            e.runs.append(run)
        execs.append(e)

    live = Execution("under-way", AUDIT_JOB, AUDIT_VERSION, now - timedelta(minutes=12), 3)
    for k in range(2):
        started = live.initiated_at + timedelta(seconds=5 + k)
        live.runs.append(
            Run(f"under-way-{k}", pcs[10 + k], AUDIT_JOB, AUDIT_VERSION, started, live.exec_id)
        )
    execs.append(live)
    execs.append(Execution("unanswered", AUDIT_JOB, AUDIT_VERSION, now - timedelta(minutes=4), 5))

    edge = Execution("edge-cases", STACK_JOB, STACK_VERSION, now - timedelta(hours=3), 3)
    start = edge.initiated_at + timedelta(seconds=3)
    edge.runs = [
        Run(
            "big-failure",
            pcs[2],
            STACK_JOB,
            STACK_VERSION,
            start,
            edge.exec_id,
            exit_code=1,
            finished_at=start + timedelta(minutes=2, seconds=14),
            stdout=big_stdout(),
            stderr=(
                "Get-CimInstance : Access denied\r\n"
                "At line:1 char:1\r\n"
                "+ Get-CimInstance Win32_BIOS\r\n"
            ),
            overflow=True,
        ),
        Run(
            "no-output",
            pcs[3],
            STACK_JOB,
            STACK_VERSION,
            start,
            edge.exec_id,
            exit_code=0,
            finished_at=start + timedelta(seconds=2),
        ),
        Run(
            "skipped",
            pcs[5],
            STACK_JOB,
            STACK_VERSION,
            start + timedelta(seconds=1),
            edge.exec_id,
            exit_code=125,
            finished_at=start + timedelta(seconds=1),
            skipped=True,
            stderr="received after its deadline\r\n",
        ),
    ]
    execs.append(edge)

    big = edge.runs[0]
    assert big.finished_at is not None
    hook_start = big.finished_at + timedelta(seconds=1)
    extra_runs = [
        Run(
            "ad-hoc",
            pcs[4],
            STACK_JOB,
            STACK_VERSION,
            now - timedelta(hours=2),
            exit_code=0,
            finished_at=now - timedelta(hours=2) + timedelta(seconds=3),
            stdout="SMBIOSBIOSVersion : 1.21.0\r\nManufacturer      : Dell Inc.\r\n",
        ),
        Run(
            "finalize",
            pcs[2],
            STACK_JOB,
            STACK_VERSION,
            hook_start,
            exit_code=0,
            finished_at=hook_start + timedelta(seconds=1),
            stdout="report uploaded\r\n",
            parent=big.result_id,
        ),
    ]
    for e in execs:
        runs.extend(e.runs)
    runs.extend(extra_runs)
    return Seed({e.name: e for e in execs}, {r.name: r for r in runs})


def _started(run: Run) -> tuple[str, bytes]:
    body = {
        "result_id": run.result_id,
        "request_id": run.request_id,
        "exec_id": run.exec_id or "",
        "pc_id": run.pc_id,
        "started_at": _wire(run.started_at),
        "manifest_id": run.job_id,
        "version": run.version,
    }
    return f"events.started.{run.exec_id or 'adhoc'}.{run.pc_id}", json.dumps(body).encode()


def _result(run: Run) -> tuple[str, bytes]:
    assert run.exit_code is not None and run.finished_at is not None
    body: dict[str, Any] = {
        "result_id": run.result_id,
        "request_id": run.request_id,
        "pc_id": run.pc_id,
        "exit_code": run.exit_code,
        "stdout": "" if run.overflow else run.stdout,
        "stderr": run.stderr,
        "started_at": _wire(run.started_at),
        "finished_at": _wire(run.finished_at),
        "manifest_id": run.job_id,
    }
    if run.exec_id:
        body["exec_id"] = run.exec_id
    if run.parent:
        body["parent_result_id"] = run.parent
    if run.skipped:
        body["skipped"] = True
    if run.overflow:
        body["stdout_object"] = f"{run.request_id}/stdout"
    return f"results.{run.request_id}", json.dumps(body).encode()


async def _record_executions(db: Any, execs: list[Execution]) -> None:
    writer = Writer(create_writer_engine(db))
    try:
        for e in execs:
            await writer.transaction(
                insert_execution,
                e.exec_id,
                e.job_id,
                e.version,
                e.target_count,
                e.initiated_at,
                None,
            )
    finally:
        writer.close()


async def _publish(url: str, messages: list[tuple[str, bytes]], objects: dict[str, bytes]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if objects:
            store = await js.object_store("result_output")
            for name, data in objects.items():
                await store.put(name, data)
        for subject, body in messages:
            await js.publish(subject, body)
    finally:
        await nc.close()


def run_async(coro: Any) -> Any:
    """Run a coroutine on its own thread: Playwright's sync API owns this one's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _wait(live: Any, what: str, sql: str, params: tuple[Any, ...], wanted: int) -> None:
    deadline = time.monotonic() + 60
    while live.query(sql, params)[0][0] < wanted:
        assert time.monotonic() < deadline, f"seed: {what} not projected within 60 s"
        time.sleep(0.2)


_SEEDS: dict[str, Seed] = {}


def seed_runs(live: Any) -> Seed:
    """Seed the runs once per stack; later calls return the same plan."""
    if live.base_url in _SEEDS:
        return _SEEDS[live.base_url]
    pcs = [pc for (pc,) in live.query("SELECT pc_id FROM agents ORDER BY pc_id")]
    seed = plan(pcs, datetime.now(UTC))
    execs = list(seed.executions.values())
    runs = list(seed.runs.values())
    ids = tuple(r.result_id for r in runs)
    marks = ",".join("?" * len(ids))

    run_async(_record_executions(live.db_path, execs))
    # Started events first, so every row has its version (a result arriving first
    # would make the started event a no-op). A finalize hook's run has none: the
    # started event carries no parent, and the first insert's parent sticks.
    started = [r for r in runs if not r.parent]
    run_async(_publish(live.nats_url, [_started(r) for r in started], {}))
    started_ids = tuple(r.result_id for r in started)
    started_marks = ",".join("?" * len(started_ids))
    _wait(
        live,
        "started runs",
        f"SELECT COUNT(*) FROM execution_results WHERE result_id IN ({started_marks})",
        started_ids,
        len(started_ids),
    )
    done = [r for r in runs if r.exit_code is not None]
    objects = {f"{r.request_id}/stdout": r.stdout.encode() for r in done if r.overflow}
    run_async(_publish(live.nats_url, [_result(r) for r in done], objects))
    _wait(
        live,
        "results",
        "SELECT COUNT(*) FROM execution_results"
        f" WHERE finished_at IS NOT NULL AND result_id IN ({marks})",
        ids,
        len(done),
    )
    _SEEDS[live.base_url] = seed
    return seed
