#!/usr/bin/env bash
# Runs everything CI runs: install, lint, types, migration drift, the suite on SQLite and PostgreSQL.
# Needs only Python 3.11+ (and a PostgreSQL server on 127.0.0.1:5432, started here when it is down).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e ".[dev]"

pg_up() { .venv/bin/python - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("127.0.0.1", 5432))
except OSError:
    sys.exit(1)
PY
}
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi

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
