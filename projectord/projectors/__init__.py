"""One module per projector; this index lists them in start-up order."""

from . import audit, events, heartbeat, host_perf, obs_events, process_perf, results

JETSTREAM = (results.PROJECTOR, events.PROJECTOR, audit.PROJECTOR, obs_events.PROJECTOR)
CORE = (heartbeat.PROJECTOR, host_perf.PROJECTOR, process_perf.PROJECTOR)
