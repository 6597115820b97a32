#!/usr/bin/env bash
# Run the whole benchmark and write docs/benchmarks.md (creates bench/.venv first if needed).
#   bash bench/run.sh [--quick] [--rounds N] [--only KEY,...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${BENCH_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import agents, threadline" 2>/dev/null; then
    BENCH_VENV="$venv" bash "$here/setup.sh"
fi
exec "$venv/bin/python" "$here/run_all.py" "$@"
