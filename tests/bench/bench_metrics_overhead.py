"""What request metrics cost apiserver: the same app with and without them, in-process.

Run from the repository root (venv active)::

    python tests/bench/bench_metrics_overhead.py [--requests 2000] [--rounds 7]

Sends ``--requests`` sequential requests to ``/api/version`` through httpx's ASGI
transport to an app without metrics and to one with them, alternately, ``--rounds``
times, and prints the median time per request of each and the difference. The
metrics are in multiprocess mode, as a served apiserver has them (values in
memory-mapped files); ``--single-process`` measures the in-memory mode instead.
Informative only: the exit status is 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


async def timed(client, requests: int) -> float:
    """Seconds per request over ``requests`` sequential GETs of /api/version."""
    started = time.perf_counter()
    for _ in range(requests):
        response = await client.get("/api/version")
        assert response.status_code == 200
    return (time.perf_counter() - started) / requests


async def measure(db_path: Path, requests: int, rounds: int) -> tuple[list[float], list[float]]:
    from api_harness import client, migrated

    migrated(db_path).dispose()
    off, on = [], []
    async with (
        client(db_path) as plain,
        client(db_path, metrics_bind="127.0.0.1:9464") as counted,
    ):
        await timed(plain, 200)  # warm both: imports, first-use paths, label children
        await timed(counted, 200)
        for _ in range(rounds):
            off.append(await timed(plain, requests))
            on.append(await timed(counted, requests))
    return off, on


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--single-process", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanade-bench-metrics-") as tmp:
        if not args.single_process:
            # Before prometheus_client is imported (through the app), as apiserver does.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tmp, "metrics"))
            Path(tmp, "metrics").mkdir()
        off, on = asyncio.run(measure(Path(tmp, "backend.db"), args.requests, args.rounds))
    mode = "single-process" if args.single_process else "multiprocess"
    off_us, on_us = statistics.median(off) * 1e6, statistics.median(on) * 1e6
    print(f"{args.requests} requests x {args.rounds} rounds to /api/version ({mode} metrics)")
    print(f"  without metrics: {off_us:8.1f} us/request (median of rounds)")
    print(f"  with metrics:    {on_us:8.1f} us/request")
    print(f"  overhead:        {on_us - off_us:8.1f} us/request ({(on_us / off_us - 1):+.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
