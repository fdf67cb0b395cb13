"""The online rule (api.md 1): an agent is online iff it heartbeat in the last 2 minutes."""

from __future__ import annotations

from datetime import timedelta

ONLINE_WINDOW = timedelta(minutes=2)
