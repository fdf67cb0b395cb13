"""Connecting to the NATS broker with the configured credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nats
import structlog
from nats.aio.client import Client

log = structlog.get_logger("projectord.broker")


def connect_options(nats_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """nats-py connect keyword arguments for a ``[nats]`` config section.

    Reconnection is unbounded: a broker restart must never end the daemon, and
    nothing is acked while disconnected, so waiting is always safe.
    """
    opts: dict[str, Any] = {
        "servers": [u.strip() for u in nats_cfg["url"].split(",")],
        "connect_timeout": nats_cfg["connect_timeout_s"],
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "allow_reconnect": True,
        "name": "projectord",
        "pending_size": 64 * 1024 * 1024,
    }
    if nats_cfg["token"]:
        opts["token"] = nats_cfg["token"]
    if nats_cfg["user"]:
        opts["user"] = nats_cfg["user"]
        opts["password"] = nats_cfg["password"]
    if nats_cfg["creds"]:
        opts["user_credentials"] = nats_cfg["creds"]
    return opts


async def connect(nats_cfg: Mapping[str, Any], name: str = "projectord") -> Client:
    """Connect and log connection state changes (never the credentials)."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=str(exc) or type(exc).__name__)

    async def on_disconnect() -> None:
        log.warning("nats_disconnected")

    async def on_reconnect() -> None:
        log.info(
            "nats_reconnected", server=str(nc.connected_url.netloc if nc.connected_url else "")
        )

    opts = connect_options(nats_cfg) | {"name": name}
    # The first connect must succeed or fail clearly; retries are for later drops.
    nc = await nats.connect(
        **opts,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )
    return nc
