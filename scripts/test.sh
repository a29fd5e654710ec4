#!/usr/bin/env bash
# Runs everything CI runs: install, lint, types, migration drift, the suite on SQLite and PostgreSQL.
# Needs only Python 3.11+ (and a PostgreSQL server on 127.0.0.1:5432, started here when it is down).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup.sh
setup_venv "[dev]"
start_postgres

echo "== ruff"
.venv/bin/ruff check app tests alembic $([ -d bench ] && echo bench)
echo "== mypy"
.venv/bin/mypy app
echo "== alembic check (no drift between models and migrations)"
tmp=$(mktemp -d)
SAMPLAN_DATA_DIR="$tmp" .venv/bin/samplan migrate >/dev/null
SAMPLAN_DATA_DIR="$tmp" .venv/bin/alembic check
rm -rf "$tmp"

# The web client's browser tests drive Debian's Chromium (never a downloaded browser build).
# When it cannot be installed they fail under CI=true rather than skip.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser tests"
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium"
fi

# The pooler tests run Debian's PgBouncer in transaction mode (tests/test_pooler.py).
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing pgbouncer for the pooler tests"
  (apt-get install -y -qq pgbouncer >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null)) \
    || echo "could not install pgbouncer"
fi

echo "== tests on SQLite"
SAMPLAN_TEST_DB=sqlite .venv/bin/python -m pytest -q "$@"
echo "== tests on PostgreSQL"
SAMPLAN_TEST_DB=postgresql .venv/bin/python -m pytest -q "$@"
