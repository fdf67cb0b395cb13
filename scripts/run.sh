#!/usr/bin/env bash
# Run projectord with an embedded nats-server (JetStream) on loopback; state in ./var.
# Extra arguments go to `projectord dev` (e.g. --nats-port 4333 --state-dir /tmp/kanade).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh embedded
exec .venv/bin/projectord dev "$@"
