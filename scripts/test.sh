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
# The openai Node client for the Node test, when npm is here and tests/node/node_modules is
# missing or older than the lock file; offline, a failed install only means that test skips.
if command -v npm >/dev/null && { [ ! -f tests/node/node_modules/.package-lock.json ] ||
    [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; }; then
    npm ci --prefix tests/node --silent --no-audit --no-fund >/dev/null 2>&1 ||
        echo "npm ci --prefix tests/node failed: the Node client test will skip"
fi
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy (strict, src/)"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
