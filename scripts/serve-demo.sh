#!/usr/bin/env bash
# Sets up a virtual environment, migrates the embedded SQLite database under ./data, loads the demo
# organisations and users, prints a token for each, and serves on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/samplan serve --demo "$@"
