#!/usr/bin/env bash
# The national-scale benchmark (docs/performance.md): installs what it needs, starts PostgreSQL
# when it is down, generates the data sets (once; later runs reuse them) and measures.
# Arguments go to bench/run.py; `bash scripts/bench.sh --help` lists them.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup.sh
setup_venv "[dev]"
start_postgres
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

exec .venv/bin/python -m bench.run "$@"
