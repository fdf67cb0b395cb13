#!/usr/bin/env bash
# Lint and run the whole test suite against a real nats-server and real SQLite files.
# Extra arguments go to pytest (e.g. -k results -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
# The dashboard tests drive Debian's chromium (Playwright downloads no browser).
if [ ! -x /usr/bin/chromium ]; then
    as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The deploy tests check the units and snippets with systemd-analyze, -sysusers, -tmpfiles.
if [ ! -x /usr/bin/systemd-analyze ]; then
    as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
