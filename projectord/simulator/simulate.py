"""The fleet simulator's runtime: N agents on one connection, one event loop.

Periodic traffic runs on timing wheels (a slot per second), so 30 000 agents
cost one loop pass per second rather than 30 000 timers: heartbeats every
``heartbeat_s`` (1 000/s at 30 000 agents), host_perf every ``host_perf_s``, and
a trickle of obs events. Commands arrive on ``commands.>``; each addressed agent
runs them as ``runs`` describes. Group membership is read from KV
(``agent_groups`` and ``agent_groups_derived``, as agents subscribe by the union)
and refreshed every minute; with ``assign_groups`` the simulator first writes
its agents' groups there, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from ..broker import connect
from ..timestamps import utc_now
from .fleet import SimAgent, heartbeat, host_perf, obs_event
from .runs import (
    EXIT_DEADLINE,
    OVERFLOW_BYTES,
    Command,
    CommandError,
    new_result_id,
    parse_command,
    plan_run,
    result_body,
    started_body,
)

log = structlog.get_logger("projectord.simulator")

GROUP_BUCKETS = ("agent_groups", "agent_groups_derived")
OUTPUT_STORE = "result_output"


async def load_groups(js: JetStreamContext, ours: set[str]) -> dict[str, set[str]]:
    """group -> our PCs in it, from the union of both group buckets."""
    members: dict[str, set[str]] = {}
    for bucket in GROUP_BUCKETS:
        try:
            kv = await js.key_value(bucket)
        except BucketNotFoundError:
            continue
        watcher = await kv.watchall()
        try:
            while (entry := await watcher.updates(timeout=30)) is not None:
                if entry.key not in ours or entry.operation is not None:
                    continue
                try:
                    groups = json.loads(entry.value)["groups"]
                except (ValueError, KeyError, TypeError):
                    continue
                for group in groups:
                    members.setdefault(group, set()).add(entry.key)
        finally:
            await watcher.stop()
    return members


class Simulator:
    def __init__(
        self,
        nc: Client,
        agents: Sequence[SimAgent],
        stop: asyncio.Event,
        *,
        heartbeat_s: int = 30,
        host_perf_s: int = 60,
        obs_per_agent_hour: float = 1.0,
        duration_scale: float = 1.0,
        assign_groups: bool = True,
        announce: bool = False,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.agents = list(agents)
        self.by_id = {a.pc_id: a for a in self.agents}
        self.stop = stop
        self.heartbeat_s = heartbeat_s
        self.host_perf_s = host_perf_s
        self.obs_per_agent_hour = obs_per_agent_hour
        self.duration_scale = duration_scale
        self.assign_groups = assign_groups
        self.announce = announce
        self.groups: dict[str, set[str]] = {}
        self.counts: Counter[str] = Counter()
        self.runs: set[asyncio.Task[None]] = set()
        self._obs_record = 0

    async def run(self) -> None:
        if self.assign_groups:
            await self._write_groups()
        self.groups = await load_groups(self.js, set(self.by_id))
        sub = await self.nc.subscribe("commands.>", cb=self._on_command)
        if self.announce:
            await self._heartbeat_all()
        loops = [
            asyncio.create_task(self._wheel(self.heartbeat_s, "heartbeat", heartbeat)),
            asyncio.create_task(self._wheel(self.host_perf_s, "host_perf", host_perf)),
            asyncio.create_task(self._obs_loop()),
            asyncio.create_task(self._refresh_groups()),
            asyncio.create_task(self._report()),
        ]
        log.info("simulator_running", agents=len(self.agents), groups=sorted(self.groups))
        try:
            await self.stop.wait()
        finally:
            await sub.unsubscribe()
            for task in (*loops, *self.runs):
                task.cancel()
            await asyncio.gather(*loops, *self.runs, return_exceptions=True)
            await self.nc.flush()
            log.info("simulator_stopped", **self.counts)

    # ------------------------------------------------------------ periodic traffic

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def _wheel(
        self, period: int, subject: str, build: Callable[[SimAgent, datetime], bytes]
    ) -> None:
        slots = [self.agents[i::period] for i in range(period)]
        tick = 0
        while True:
            now = utc_now()
            for agent in slots[tick % period]:
                await self.nc.publish(f"{subject}.{agent.pc_id}", build(agent, now))
            self.counts[subject] += len(slots[tick % period])
            tick += 1
            if await self._sleep(1.0):
                return

    async def _heartbeat_all(self) -> None:
        """Every agent heartbeats at once, as a freshly started fleet would: the whole
        fleet shows online now rather than over the first heartbeat period."""
        now = utc_now()
        for agent in self.agents:
            await self.nc.publish(f"heartbeat.{agent.pc_id}", heartbeat(agent, now))
        self.counts["heartbeat"] += len(self.agents)
        await self.nc.flush()

    async def _obs_loop(self) -> None:
        per_second = len(self.agents) * self.obs_per_agent_hour / 3600
        owed = 0.0
        rng = self.agents[0].rng if self.agents else None
        while rng is not None:
            owed += per_second
            while owed >= 1:
                owed -= 1
                agent = rng.choice(self.agents)
                self._obs_record += 1
                body = obs_event(agent, utc_now(), self._obs_record)
                await self.js.publish(f"obs.{agent.pc_id}", body)
                self.counts["obs"] += 1
            if await self._sleep(1.0):
                return

    async def _write_groups(self) -> None:
        kv = await self.js.key_value("agent_groups")
        sem = asyncio.Semaphore(256)

        async def put(agent: SimAgent) -> None:
            async with sem:
                await kv.put(agent.pc_id, json.dumps({"groups": list(agent.groups)}).encode())

        await asyncio.gather(*(put(a) for a in self.agents))

    async def _refresh_groups(self) -> None:
        while not await self._sleep(60):
            try:
                self.groups = await load_groups(self.js, set(self.by_id))
            except Exception as exc:
                log.warning("group_refresh_failed", error=str(exc))

    async def _report(self) -> None:
        while not await self._sleep(10):
            log.info("simulator_progress", in_flight=len(self.runs), **self.counts)

    # ------------------------------------------------------------ commands

    def _recipients(self, subject: str) -> list[SimAgent]:
        kind, _, rest = subject.removeprefix("commands.").partition(".")
        if kind == "all":
            return self.agents
        if kind == "group":
            return [self.by_id[pc] for pc in sorted(self.groups.get(rest, ()))]
        if kind == "pc" and rest in self.by_id:
            return [self.by_id[rest]]
        return []

    async def _on_command(self, msg: Msg) -> None:
        recipients = self._recipients(msg.subject)
        if not recipients:
            return
        try:
            cmd = parse_command(msg.data)
        except CommandError as exc:
            log.warning("command_dropped", subject=msg.subject, error=str(exc))
            return
        self.counts["commands"] += 1
        single = len(recipients) == 1 and msg.subject.startswith("commands.pc.")
        for agent in recipients:
            task = asyncio.create_task(self._run(agent, cmd, single))
            self.runs.add(task)
            task.add_done_callback(self.runs.discard)

    async def _run(self, agent: SimAgent, cmd: Command, single: bool) -> None:
        # Overflow keys are per request id, so only a single-PC Command may use
        # one without another PC of the same broadcast overwriting it.
        plan = plan_run(agent, cmd, self.duration_scale, allow_overflow=single)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        result_id = new_result_id()
        started = utc_now()
        if cmd.deadline_at is not None and started > cmd.deadline_at:
            body = result_body(
                agent, cmd, result_id, started, started, EXIT_DEADLINE, "", "", skipped=True
            )
            await self.js.publish(f"results.{cmd.request_id}", body)
            self.counts["skipped_deadline"] += 1
            return
        await self.js.publish(
            f"events.started.{cmd.exec_id}.{agent.pc_id}",
            started_body(agent, cmd, result_id, started),
        )
        await asyncio.sleep(plan.duration)
        finished = max(utc_now(), started + timedelta(microseconds=1))
        stdout_object = None
        if len(plan.stdout.encode()) > OVERFLOW_BYTES:
            stdout_object = f"{cmd.request_id}/stdout"
            store = await self.js.object_store(OUTPUT_STORE)
            await store.put(stdout_object, plan.stdout.encode())
            self.counts["overflow"] += 1
        body = result_body(
            agent,
            cmd,
            result_id,
            started,
            finished,
            plan.exit_code,
            plan.stdout,
            plan.stderr,
            stdout_object=stdout_object,
        )
        await self.js.publish(f"results.{cmd.request_id}", body)
        self.counts["results"] += 1


async def run_simulator(
    nats_cfg: Mapping[str, Any], agents: Sequence[SimAgent], **options: Any
) -> int:
    """Connect, simulate until SIGINT/SIGTERM, disconnect; the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    nc = await connect(nats_cfg, name="kanade-simulator")
    try:
        await Simulator(nc, agents, stop, **options).run()
    finally:
        await nc.close()
    return 0
