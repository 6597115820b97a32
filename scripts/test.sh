#!/usr/bin/env bash
# The whole test suite, in its own virtual environment: lint, format check, strict type check,
# then pytest with warnings as errors. Usage: scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${THREADLINE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev,local]'
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy (strict, src/)"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
