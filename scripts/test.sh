#!/usr/bin/env bash
# Lint and run the whole test suite against a real nats-server and real SQLite files.
# Extra arguments go to pytest (e.g. -k results -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
