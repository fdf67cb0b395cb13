#!/usr/bin/env bash
# The whole kanade backend on loopback: embedded nats-server (JetStream), projectord,
# apiserver with a generated login, a simulated fleet and sample schedules; state in ./var.
# Extra arguments go to `projectord dev` (see `projectord dev --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh embedded
exec .venv/bin/projectord dev "$@"
