#!/usr/bin/env bash
# Build the documentation site (docs/*.md and every public docstring) into site/, strictly:
# a broken link, a missing page or an unresolvable reference fails the build. Nothing is
# fetched from the network. Usage: scripts/docs.sh [extra mkdocs build args]; then open
# site/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${THREADLINE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import mkdocs, mkdocstrings_handlers.python, threadline" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[docs]'
fi
exec "$VENV/bin/python" -m mkdocs build --strict "$@"
