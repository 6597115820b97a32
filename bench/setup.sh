#!/usr/bin/env bash
# Create the benchmark's own environment: threadline (editable) next to the OpenAI Agents SDK.
#   bash bench/setup.sh            # -> bench/.venv
#   PYTHON=python3.12 bash bench/setup.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${BENCH_VENV:-$here/.venv}"
python="${PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -e "$root" "openai-agents==0.24.0"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("threadline", "openai-agents", "openai"):
    print(f"{name}=={md.version(name)}")
PY
