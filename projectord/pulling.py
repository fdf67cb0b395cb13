"""How a JetStream projector pulls its messages and acks them.

Two pullers with one interface (``bind``, ``fetch``, ``ack``):

* :class:`HelperPuller`, what the daemon uses: the broker client work runs in
  the pull helper process (projectord/pull_helper.py explains why), reached
  over a socket pair. A helper that dies is started again at the next call;
  the projector's fetch fails meanwhile and it repositions from its checkpoint,
  exactly as after a broker restart.
* :class:`LocalPuller`: the same on this process's own connection.

Either way a fetched message is a :class:`Pulled` (subject, body, reply
subject), and an ack is a publish to the reply subject.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog

from . import pull_frames
from .pull_requests import Pulled, PullInbox

log = structlog.get_logger("projectord.pulling")

# How long past its own fetch timeout an answer from the helper may take
# before the helper is taken for hung.
_ANSWER_GRACE_S = 30.0


class Puller(Protocol):
    """What a JetStream projector pulls through."""

    async def bind(self, stream: str, durable: str, pending_msgs: int) -> None: ...

    async def fetch(self, stream: str, batch: int, timeout: float) -> list[Pulled]: ...

    async def ack(self, stream: str, replies: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


class PullHelperGone(ConnectionError):
    """The pull helper exited or stopped answering; the next call starts another."""


class LocalPuller:
    """Pulls on the given connection, in this process (and in the pull helper)."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.inboxes: dict[str, PullInbox] = {}

    async def bind(self, stream: str, durable: str, pending_msgs: int) -> None:
        old = self.inboxes.pop(stream, None)
        if old is not None:
            await old.unsubscribe()
        inbox = PullInbox(self.nc, stream, durable)
        await inbox.subscribe(pending_msgs)
        self.inboxes[stream] = inbox

    async def fetch(self, stream: str, batch: int, timeout: float) -> list[Pulled]:
        inbox = self.inboxes.get(stream)
        if inbox is None:
            raise LookupError(f"no durable bound for stream {stream}")
        return await inbox.fetch(batch, timeout)

    async def ack(self, stream: str, replies: Sequence[str]) -> None:
        for reply in replies:
            await self.nc.publish(reply, b"")

    async def close(self) -> None:
        for inbox in self.inboxes.values():
            await inbox.unsubscribe()


class HelperPuller:
    """Pulls through the pull helper process, started on first use."""

    def __init__(self, nats_cfg: Mapping[str, Any], log_cfg: Mapping[str, Any]) -> None:
        self.nats_cfg = dict(nats_cfg)
        self.log_cfg = dict(log_cfg)
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.answers: dict[int, asyncio.Future[Any]] = {}
        self.ids = itertools.count(1)
        self.reading: asyncio.Task[None] | None = None
        self.starting: asyncio.Lock = asyncio.Lock()
        self.closing = False

    # ---------------------------------------------------------------- lifecycle

    async def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "projectord.pull_helper",
                str(theirs.fileno()),
                str(os.getpid()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        reader, self.writer = await asyncio.open_unix_connection(sock=ours)
        self.answers = {0: asyncio.get_running_loop().create_future()}
        self.reading = asyncio.create_task(self._read_answers(reader, self.proc))
        self._send(("connect", self.nats_cfg, self.log_cfg["format"], self.log_cfg["level"]))
        await self._wait(0, self.nats_cfg["connect_timeout_s"] + _ANSWER_GRACE_S)
        log.info("pull_helper_started", pid=self.proc.pid)

    async def _ready(self) -> None:
        async with self.starting:
            if self.writer is None:
                await self._start()

    async def _read_answers(
        self, reader: asyncio.StreamReader, proc: asyncio.subprocess.Process
    ) -> None:
        try:
            while True:
                kind, rid, value = await pull_frames.read(reader)
                answer = self.answers.pop(rid, None)
                if answer is None or answer.done():
                    continue
                if kind == "ok":
                    answer.set_result(value)
                else:
                    answer.set_exception(RuntimeError(f"pull helper: {value}"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._forget(proc)

    def _forget(self, proc: asyncio.subprocess.Process) -> None:
        """The helper's socket closed: fail what waits and start afresh next time."""
        if self.proc is not proc:
            return
        if self.writer is not None:
            self.writer.close()
        self.writer = None
        if not self.closing:
            if proc.returncode is None:
                proc.kill()  # hung or half-closed: do not keep it around
            log.warning("pull_helper_exited", pid=proc.pid, waiting=len(self.answers))
        for answer in self.answers.values():
            if not answer.done():
                answer.set_exception(PullHelperGone("the pull helper exited"))
        self.answers = {}

    async def close(self) -> None:
        """Flush the helper's acks to the broker and let it exit."""
        if self.writer is None or self.proc is None:
            return
        proc, rid = self.proc, next(self.ids)
        self.closing = True  # its socket closing now is not a failure
        try:
            self._ask(rid, ("close", rid))
            await self._wait(rid, 5)
        except Exception as exc:
            log.warning("pull_helper_close_failed", error=str(exc) or type(exc).__name__)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self.reading is not None:
            await asyncio.gather(self.reading, return_exceptions=True)

    # ---------------------------------------------------------------- requests

    def _send(self, frame: tuple[Any, ...]) -> None:
        if self.writer is None:
            raise PullHelperGone("the pull helper is not running")
        self.writer.write(pull_frames.encode(frame))

    def _ask(self, rid: int, frame: tuple[Any, ...]) -> None:
        self.answers[rid] = asyncio.get_running_loop().create_future()
        self._send(frame)

    async def _wait(self, rid: int, timeout: float) -> Any:
        answer = self.answers.get(rid)
        if answer is None:
            raise PullHelperGone("the pull helper exited")
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            if self.proc is not None and self.proc.returncode is None:
                self.proc.kill()  # its reader then fails every other waiter too
            raise PullHelperGone(f"the pull helper did not answer within {timeout:.0f} s") from None

    async def _request(self, timeout: float, kind: str, *args: Any) -> Any:
        await self._ready()
        rid = next(self.ids)
        self._ask(rid, (kind, rid, *args))
        return await self._wait(rid, timeout)

    async def bind(self, stream: str, durable: str, pending_msgs: int) -> None:
        await self._request(_ANSWER_GRACE_S, "bind", stream, durable, pending_msgs)

    async def fetch(self, stream: str, batch: int, timeout: float) -> list[Pulled]:
        return await self._request(timeout + _ANSWER_GRACE_S, "fetch", stream, batch, timeout)

    async def ack(self, stream: str, replies: Sequence[str]) -> None:
        self._send(("ack", stream, list(replies)))
        assert self.writer is not None
        await self.writer.drain()
