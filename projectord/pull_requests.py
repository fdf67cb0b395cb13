"""JetStream pull requests on one inbox, without a task per message.

nats-py's ``PullSubscription.fetch`` waits for every delivered message with
``next_msg``, which starts a task and a timer per message: about 15 µs of
Python each, three quarters of a bare consume-and-ack loop's cost
(tests/bench/bench_projector.py prints both). Here one subscription callback
appends each delivery to a list and one future per fetch wakes the caller.

The protocol is JetStream's own (``$JS.API.CONSUMER.MSG.NEXT``), in the two
steps nats-py uses: a ``no_wait`` request for what is there now; if that
delivered nothing, a request that waits up to the fetch's timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, NamedTuple

# Status codes the server sends on the inbox instead of a message.
_HEARTBEAT = "100"
_REQUEST_ENDED = ("404", "408")  # no messages / the request expired
_NO_RESPONDERS = "503"
# Bytes a subscription may hold before nats-py drops deliveries as a slow
# consumer (the projector then sees a gap and repositions): a batch of large results.
_PENDING_BYTES = 256 * 1024 * 1024


class Pulled(NamedTuple):
    """One delivered message: what the projector reads and the subject its ack goes to."""

    subject: str
    data: bytes
    reply: str


def _describe(status: str, description: str) -> str:
    if status == _NO_RESPONDERS:
        description = "no responders: the durable or its stream does not exist"
    return f"{status} {description.splitlines()[0] if description else ''}".strip()


class PullRefused(RuntimeError):
    """The server answered a pull request with an error status (e.g. the durable is gone)."""


class PullInbox:
    """One durable's pull requests and the messages delivered for them.

    Deliveries for a request that outlived its fetch are kept for the next
    fetch, in order, so no delivery sequence number is skipped.
    """

    def __init__(self, nc: Any, stream: str, durable: str) -> None:
        self.nc = nc
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox: str = nc.new_inbox()
        self.delivered: list[Pulled] = []
        self.sub: Any = None
        self._wanted = 0  # wake the fetch once this many are delivered
        self._refused: str | None = None
        self._wake: asyncio.Future[None] | None = None

    async def subscribe(self, pending_msgs: int) -> None:
        self.sub = await self.nc.subscribe(
            self.inbox,
            cb=self._on_message,
            pending_msgs_limit=pending_msgs,
            pending_bytes_limit=_PENDING_BYTES,
        )

    async def unsubscribe(self) -> None:
        """Best effort: on a closed connection the server has already forgotten it."""
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:
                pass

    async def _on_message(self, msg: Any) -> None:
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status is None:
            self.delivered.append(Pulled(msg.subject, msg.data, msg.reply))
            if len(self.delivered) < self._wanted:
                return
        elif status == _HEARTBEAT:
            return
        elif status not in _REQUEST_ENDED:
            self._refused = _describe(status, msg.headers.get("Description") or "")
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def fetch(self, batch: int, timeout: float) -> list[Pulled]:
        """Up to ``batch`` messages; fewer as soon as the stream has no more now.

        With nothing available it waits up to ``timeout`` for the first
        message and returns ``[]`` if none came. Raises :class:`PullRefused`
        on an error status from the server.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if len(self.delivered) < batch:
            await self._request(batch, {"no_wait": True}, deadline)
        if not self.delivered:
            left = deadline - loop.time()
            if left > 0.001:
                # Expire just before our own deadline so no request outlives the fetch.
                await self._request(batch, {"expires": int((left - 0.001) * 1e9)}, deadline)
        taken, self.delivered = self.delivered[:batch], self.delivered[batch:]
        return taken

    async def _request(self, batch: int, options: dict[str, Any], deadline: float) -> None:
        self._wanted, self._refused = batch, None
        wanted = {"batch": batch - len(self.delivered), **options}
        self._wake = asyncio.get_running_loop().create_future()
        try:
            await self.nc.publish(self.next_subject, json.dumps(wanted).encode(), self.inbox)
            left = deadline - asyncio.get_running_loop().time()
            if left > 0 and len(self.delivered) < batch:
                try:
                    await asyncio.wait_for(self._wake, left)
                except TimeoutError:
                    pass
        finally:
            self._wake, self._wanted = None, 0
        if self._refused is not None and not self.delivered:
            raise PullRefused(f"pull request to {self.next_subject} refused: {self._refused}")
