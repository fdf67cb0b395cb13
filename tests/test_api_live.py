"""apiserver reading while projectord writes at full speed into the same file."""

from __future__ import annotations

import asyncio

from api_harness import client
from harness import checkpoint, wait_checkpoint
from wire import body, exec_result, heartbeat


async def test_reads_succeed_while_projectord_writes(nats_server, nc, js, db_path, projectord):
    total = 6000
    statuses: list[int] = []
    done = asyncio.Event()

    async def read_constantly(c) -> None:
        while not done.is_set():
            for path in ("/api/results?limit=200", "/api/agents?limit=50", "/api/projector/status"):
                statuses.append((await c.get(path)).status_code)

    async with client(db_path) as c:
        readers = [asyncio.create_task(read_constantly(c)) for _ in range(4)]
        for i in range(total):
            result = exec_result(f"r-{i:05d}", request_id=f"q-{i}", pc_id=f"pc-{i % 50}")
            await nc.publish(f"results.pc-{i % 50}", body(result))
            if i % 50 == 0:
                await nc.publish(f"heartbeat.pc-{i % 50}", body(heartbeat(f"pc-{i % 50}")))
        await nc.flush()
        await wait_checkpoint(db_path, "results", total, timeout=60)
        done.set()
        await asyncio.gather(*readers)

        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        page = (await c.get("/api/results?limit=1000")).json()
        assert len(page) == 1000
        assert {row["result_id"] for row in page} <= {f"r-{i:05d}" for i in range(total)}
    assert checkpoint(db_path, "results") == total
