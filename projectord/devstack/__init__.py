"""``projectord dev``: the whole kanade backend on one machine, for trying it out.

An embedded nats-server (or an existing broker), projectord, apiserver with a
generated login, and a simulated fleet answering a handful of sample jobs and
schedules, all on loopback with their state under one local folder.
"""
