#!/usr/bin/env bash
# Install gridmap into .venv and run the demo: a database with demo data, served on
# http://127.0.0.1:5000 (Ctrl-C stops it).  Extra arguments go to `gridmap demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Python >= 3.11 with the venv module (installs Debian's python3-venv if root and missing).
bash scripts/system-deps.sh --python-only
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "demo.sh: needs Python >= 3.11 as python3 (found $(python3 --version 2>&1))" >&2; exit 1; }

# Create .venv, or reuse it if it works.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    python3 -m venv .venv
fi

echo "demo.sh: installing gridmap into .venv (the first run downloads dependencies)..." >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .

exec .venv/bin/gridmap demo "$@"
