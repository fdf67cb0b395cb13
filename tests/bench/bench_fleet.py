"""Fleet benchmark: projector lag and the per_pc scheduler tick with a simulated fleet.

Run from the repository root (venv active)::

    python tests/bench/bench_fleet.py [--agents 30000] [--seconds 90]

It starts a real nats-server, projectord (housekeeping on, its own scheduler
off) and ``projectord simulate --agents N`` as separate processes. Once every
agent has been projected, this process runs the scheduler itself on the same
database so each tick can be timed: a ``per_pc`` schedule over the whole fleet
(every 1 d, jitter 60 s). The first tick dispatches to every PC; the next ones
find every PC in flight, which is the steady cost of a per_pc schedule each
minute. While the fleet answers (heartbeats, host_perf, one started event and
one result per PC), projector lag is sampled every second:

* JetStream projectors: 0 when the checkpoint is at the stream's last
  sequence, else the age of the oldest unapplied message (now minus the
  publish time of checkpoint + 1);
* heartbeats: age of the newest heartbeat in ``agents``, minus nothing (it
  includes the agents' own 1 s flush spacing).

Printed: tick durations, lag max and p99 per projector, RSS of projectord and
the simulator at start and end, DB size. Targets: lag under 2 s, per_pc tick
under 1 s. Informative only: the exit status is 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nats
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import NatsServer, projectord_cmd, spawn_projectord  # noqa: E402
from projector_lag import empty_lags, pctl, sample_lag  # noqa: E402

from projectord.broker_resources import ensure_resources  # noqa: E402
from projectord.database import Writer, create_writer_engine  # noqa: E402
from projectord.logconfig import configure_logging  # noqa: E402
from projectord.scheduler.tick import Scheduler  # noqa: E402

TARGET_LAG_S = 2.0
TARGET_TICK_S = 1.0


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


async def main(args: argparse.Namespace) -> int:
    configure_logging("json", "warning")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    server = NatsServer(work / "nats")
    server.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = work / "backend.db"
        config = work / "projectord.toml"
        config.write_text("[scheduler]\nenabled = false\n")
        projectord = spawn_projectord(
            server, db, "--config", str(config), log_path=work / "projectord.log"
        )
        procs.append(projectord)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_resources(js)
        env = {**os.environ, "KANADE_NATS_URL": server.url}
        env.pop("KANADE_CONFIG", None)
        with open(work / "simulator.log", "ab") as sim_log:
            sim = subprocess.Popen(
                projectord_cmd("simulate", "--agents", str(args.agents)),
                env=env,
                stdout=sim_log,
                stderr=sim_log,
            )
        procs.append(sim)
        pd_ps, sim_ps = psutil.Process(projectord.pid), psutil.Process(sim.pid)

        print(f"waiting for {args.agents} agents to be projected ...", flush=True)
        deadline = time.monotonic() + 120
        ro = None
        while time.monotonic() < deadline:
            if db.exists():
                ro = ro or sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
                try:
                    if ro.execute("SELECT COUNT(*) FROM agents").fetchone()[0] >= args.agents:
                        break
                except sqlite3.OperationalError:
                    pass
            await asyncio.sleep(1)
        else:
            raise TimeoutError("the fleet was not projected within 120 s")
        assert ro is not None
        rss_start = (rss_mb(pd_ps), rss_mb(sim_ps))

        job = {
            "id": "baseline",
            "version": "1.0.0",
            "execute": {"shell": "powershell", "script": "Get-Baseline", "timeout": "5m"},
        }
        schedule = {
            "id": "baseline-daily",
            "when": {"per_pc": {"every": "1d"}},
            "job_id": "baseline",
            "target": {"all": True},
            "jitter": "60s",
        }
        await (await js.key_value("jobs")).put("baseline", json.dumps(job).encode())
        await (await js.key_value("schedules")).put("baseline-daily", json.dumps(schedule).encode())
        while (
            ro.execute("SELECT COUNT(*) FROM kv_entries WHERE bucket = 'schedules'").fetchone()[0]
            < 1
        ):
            await asyncio.sleep(0.2)

        writer = Writer(create_writer_engine(db))
        scheduler = Scheduler(js, writer, {"catch_up_grace_s": 0}, asyncio.Event())
        ticks: list[float] = []

        async def tick() -> None:
            start = time.perf_counter()
            await scheduler.tick(datetime.now(UTC))
            await scheduler.settle()
            ticks.append(time.perf_counter() - start)

        await tick()  # dispatches to every PC
        fired = ro.execute("SELECT outcome, target_count FROM schedule_fires").fetchall()
        print(f"first per_pc tick: {ticks[0]:.2f} s, {fired}", flush=True)

        lags = empty_lags()
        next_tick = time.monotonic() + 15
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            await sample_lag(js, ro, lags)
            if time.monotonic() >= next_tick:
                await tick()
                next_tick = time.monotonic() + 15
            await asyncio.sleep(1)
        rss_end = (rss_mb(pd_ps), rss_mb(sim_ps))
        runs = ro.execute(
            "SELECT COUNT(*), SUM(finished_at IS NOT NULL) FROM execution_results"
        ).fetchone()
        writer.close()
        await nc.close()

        size_mb = sum(p.stat().st_size for p in work.glob("backend.db*")) / 2**20
        steady = ticks[1:]
        print()
        print("=" * 78)
        print(
            "command:  python tests/bench/bench_fleet.py"
            f" --agents {args.agents} --seconds {args.seconds}"
        )
        print(f"host:     {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print(f"fleet:    {args.agents} simulated agents; runs answered {runs[1]}/{runs[0]}")
        print(f"per_pc tick, first (dispatch to every PC): {ticks[0]:.2f} s")
        if steady:
            print(
                f"per_pc tick, steady ({len(steady)} ticks, every PC in flight): "
                f"max {max(steady):.2f} s   target < {TARGET_TICK_S:.0f} s   "
                f"{'PASS' if max(steady) < TARGET_TICK_S else 'MISS'}"
            )
        worst = 0.0
        for name, values in lags.items():
            worst = max(worst, max(values, default=0.0))
            print(
                f"lag {name:11s} max {max(values, default=0):6.2f} s"
                f"   p99 {pctl(values, 0.99):6.2f} s"
            )
        print(
            f"projector lag max {worst:.2f} s   target < {TARGET_LAG_S:.0f} s   "
            f"{'PASS' if worst < TARGET_LAG_S else 'MISS'}"
        )
        print(
            f"RSS projectord {rss_start[0]:.0f} -> {rss_end[0]:.0f} MB; "
            f"simulator {rss_start[1]:.0f} -> {rss_end[1]:.0f} MB; DB {size_mb:.0f} MB"
        )
        print("=" * 78)
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=30000)
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--keep", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
