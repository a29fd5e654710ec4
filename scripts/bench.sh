#!/usr/bin/env bash
# The national-scale benchmark (docs/performance.md): installs what it needs, starts PostgreSQL
# when it is down, generates the data sets (once; later runs reuse them) and measures.
# Arguments go to bench/run.py; `bash scripts/bench.sh --help` lists them.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e ".[dev]"

pg_up() { .venv/bin/python -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 1)' 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

exec .venv/bin/python -m bench.run "$@"
