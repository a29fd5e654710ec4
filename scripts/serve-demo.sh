#!/usr/bin/env bash
# Sets up a virtual environment, migrates the embedded SQLite database under ./data, loads the demo
# organisations and users, prints a token for each, and serves on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
setup_venv
exec .venv/bin/samplan serve --demo "$@"
