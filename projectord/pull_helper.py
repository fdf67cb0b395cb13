"""The pull helper: a child process that pulls JetStream messages and acks them.

Why a process: every delivered message costs the broker client Python time
(parsing the protocol, building the message, the ack), about 5 µs even on the
lean pull path of projectord/pull_requests.py. In the helper that runs on
another core, while projectord decodes and commits. Alternated benchmark runs
drained 31,900 msg/s on average with the helper and 26,100 with the same
pulls in projectord (tests/bench/bench_projector.py).

The helper has no state of its own and never decides anything: projectord
binds it to a durable, asks it for a batch, and later tells it which replies to
ack (after the commit). It ignores SIGINT/SIGTERM, because projectord must ack
its last batch through it while stopping, and dies with projectord.

Run by projectord as ``python -m projectord.pull_helper FD PARENT_PID``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import Any

import structlog

from . import pull_frames
from .broker import connect
from .logconfig import configure_logging
from .parent_death import die_with_parent
from .pulling import LocalPuller

log = structlog.get_logger("projectord.pull_helper")


class Helper:
    """Serves projectord's requests on one socket until it says close or goes away."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.nc: Any = None
        self.puller: LocalPuller | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def reply(self, frame: tuple[Any, ...]) -> None:
        self.writer.write(pull_frames.encode(frame))
        await self.writer.drain()

    async def serve(self) -> None:
        _kind, nats_cfg, log_format, log_level = await pull_frames.read(self.reader)
        configure_logging(log_format, log_level)
        self.nc = await connect(nats_cfg, name="projectord-pull")
        self.puller = LocalPuller(self.nc)
        await self.reply(("ok", 0, None))
        while True:
            try:
                request = await pull_frames.read(self.reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # projectord is gone
            kind = request[0]
            if kind == "ack":
                # In order and before any later request: a stop acks then closes.
                await self.puller.ack(*request[1:])
            elif kind == "close":
                await self._flush()
                await self.reply(("ok", request[1], None))
                return
            else:
                task = asyncio.create_task(self.answer(request))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _flush(self) -> None:
        try:
            await self.nc.flush(timeout=2)
        except Exception as exc:
            log.warning("final_flush_failed", error=str(exc) or type(exc).__name__)

    async def answer(self, request: tuple[Any, ...]) -> None:
        kind, rid = request[0], request[1]
        try:
            if kind == "bind":
                result = await self.puller.bind(*request[2:])
            elif kind == "fetch":
                result = await self.puller.fetch(*request[2:])
            else:
                raise ValueError(f"unknown request {kind!r}")
        except Exception as exc:
            await self.reply(("error", rid, f"{type(exc).__name__}: {exc}"))
        else:
            await self.reply(("ok", rid, result))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()
        self.writer.close()


async def run(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    helper = Helper(reader, writer)
    try:
        await helper.serve()
    finally:
        await helper.close()


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:
        return 1  # projectord died before the line above took effect
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        asyncio.run(run(fd))
    except Exception as exc:  # projectord logs pull_helper_exited and starts another
        log.error("pull_helper_failed", error=str(exc) or type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
