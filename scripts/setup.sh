# Shared by the scripts beside it (source it; it defines functions and runs nothing).

# A virtual environment in .venv with Samplan installed editable; $1: pip extras, e.g. "[dev]".
setup_venv() {
  local py=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e ".${1:-}"
}

pg_up() {
  .venv/bin/python -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 1)' 2>/dev/null
}

# Start the machine's PostgreSQL cluster when nothing answers on 127.0.0.1:5432.
start_postgres() {
  if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      echo "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
      for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
  fi
}
