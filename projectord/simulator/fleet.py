"""Simulated agents and the bodies they publish, as a Rust agent serialises them.

Pure: every body is built from an agent, an instant and a seeded RNG, so the
simulator's traffic is reproducible. Timestamps carry nanoseconds and a ``Z``,
optional fields are omitted when unset, exactly as the agents do.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

AGENT_VERSION = "0.43.29"
GROUPS = ("office", "lab", "kiosk", "servers")
OBS_KINDS = (
    ("logon", "winlog:Security"),
    ("logoff", "winlog:Security"),
    ("idle", "agent:activity"),
)
_WORDS = (
    "Name Manufacturer Model SerialNumber BIOS Version Processor Memory Disk Adapter Status"
    " Caption Windows Enterprise Build InstallDate LastBootUpTime OK Intel Core NTFS free"
).split()


@dataclass
class SimAgent:
    pc_id: str
    hostname: str
    os_family: str
    cpu_count: int
    mem_total: int
    groups: tuple[str, ...]
    user: str
    rng: random.Random = field(repr=False)
    # Cumulative agent disk counters, as the real agent reports them.
    disk_read: int = 0
    disk_written: int = 0


def make_fleet(count: int, seed: int = 1, prefix: str = "sim") -> list[SimAgent]:
    """``count`` agents with stable ids ``<prefix>-00001``... and varied hardware."""
    rng = random.Random(seed)
    agents = []
    width = max(5, len(str(count)))
    for i in range(1, count + 1):
        pc_id = f"{prefix}-{i:0{width}d}"
        groups = tuple(sorted({GROUPS[i % 3], *(("servers",) if i % 50 == 0 else ())}))
        agents.append(
            SimAgent(
                pc_id=pc_id,
                hostname=pc_id.upper(),
                os_family="linux" if i % 10 == 0 else "windows",
                cpu_count=rng.choice((4, 8, 16)),
                mem_total=rng.choice((8, 16, 32)) * 2**30,
                groups=groups,
                user=f"user{i % 997:03d}",
                rng=random.Random(seed * 1_000_003 + i),
            )
        )
    return agents


def wire_time(instant: datetime) -> str:
    """``2026-05-20T12:00:00.123456789Z``: what chrono writes for a UTC instant
    (nine fraction digits; the last three are below Python's resolution)."""
    utc = instant.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}789Z"


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def heartbeat(agent: SimAgent, now: datetime) -> bytes:
    agent.disk_read += agent.rng.randrange(0, 200_000)
    agent.disk_written += agent.rng.randrange(0, 400_000)
    return _dump(
        {
            "pc_id": agent.pc_id,
            "at": wire_time(now),
            "agent_version": AGENT_VERSION,
            "hostname": agent.hostname,
            "os_family": agent.os_family,
            "agent_cpu_pct": round(agent.rng.uniform(0, 3), 2),
            "agent_rss_bytes": 40_000_000 + agent.rng.randrange(5_000_000),
            "agent_disk_read_bytes": agent.disk_read,
            "agent_disk_written_bytes": agent.disk_written,
            "last_logon_user": agent.user,
            "last_logon_display_name": agent.user.title(),
            "command_keys": [],
        }
    )


def host_perf(agent: SimAgent, now: datetime) -> bytes:
    rng = agent.rng
    return _dump(
        {
            "pc_id": agent.pc_id,
            "at": wire_time(now),
            "cpu_pct": round(min(100.0, rng.expovariate(1 / 12)), 2),
            "cpu_count": agent.cpu_count,
            "mem_used_bytes": int(agent.mem_total * rng.uniform(0.3, 0.9)),
            "mem_total_bytes": agent.mem_total,
            "swap_used_bytes": 0,
            "swap_total_bytes": 2**31,
            "disk_read_bytes_per_sec": round(rng.expovariate(1 / 200_000), 1),
            "disk_written_bytes_per_sec": round(rng.expovariate(1 / 300_000), 1),
            "net_rx_bytes_per_sec": round(rng.expovariate(1 / 50_000), 1),
            "net_tx_bytes_per_sec": round(rng.expovariate(1 / 20_000), 1),
        }
    )


def obs_event(agent: SimAgent, now: datetime, record: int) -> bytes:
    kind, source = agent.rng.choice(OBS_KINDS)
    body: dict[str, Any] = {
        "pc_id": agent.pc_id,
        "at": wire_time(now),
        "kind": kind,
        "source": source,
        "event_record_id": str(record),
    }
    if kind == "logon":
        body["payload"] = {"logon_type": 2, "user": agent.user}
    return _dump(body)


def output_text(rng: random.Random, size: int) -> str:
    """Inventory-like CRLF text of about ``size`` characters."""
    lines, n = [], 0
    while n < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 8))) + "\r\n"
        lines.append(line)
        n += len(line)
    return "".join(lines)[:size]
