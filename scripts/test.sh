#!/usr/bin/env bash
# Install everything, run the house tools, then the whole test suite, twice:
#   0. ruff (lint and import order) and mypy (types of the core packages), both configured in pyproject.toml;
#   1. on SQLite (the default), browser tests included;
#   2. on PostgreSQL + PostGIS (GRIDMAP_TEST_DATABASE=postgresql): the tests start their own
#      throwaway server (tests/pgserver.py); browser and bench-script tests are not repeated (-m "not browser and not bench").
# Extra arguments go to both pytest runs, e.g.  bash scripts/test.sh -x -k crs
# The same script for developers and CI (.ci/run).  Exits non-zero if a tool or either run fails; the
# suites run even when a tool fails, so one run reports everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# System packages: PostgreSQL 15 + PostGIS, Chromium, Noto CJK fonts, python3-venv.
bash scripts/system-deps.sh
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "test.sh: needs Python >= 3.11 as python3 (found $(python3 --version 2>&1))" >&2; exit 1; }

# Create .venv, or reuse it if it works; install the project with its test extras.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    python3 -m venv .venv
fi
echo "test.sh: installing gridmap[test] into .venv..." >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

echo; echo "===== test.sh: ruff and mypy ====="
rc_ruff=0
.venv/bin/python -m ruff check . || rc_ruff=$?
rc_mypy=0
.venv/bin/python -m mypy || rc_mypy=$?

# "$@" goes to both runs.  `env -u` keeps a GRIDMAP_TEST_DATABASE from the caller's shell out of the SQLite run.
echo; echo "===== test.sh: SQLite run ====="
rc_sqlite=0
env -u GRIDMAP_TEST_DATABASE \
    .venv/bin/python -m pytest -p no:cacheprovider "$@" || rc_sqlite=$?

echo; echo "===== test.sh: PostgreSQL run ====="
rc_postgresql=0
GRIDMAP_TEST_DATABASE=postgresql \
    .venv/bin/python -m pytest -p no:cacheprovider -m "not browser and not bench" "$@" || rc_postgresql=$?

tool() {  # tool EXIT-CODE
    if [[ $1 -eq 0 ]]; then echo "passed"; else echo "FAILED (exit code $1)"; fi
}
describe() {  # describe PYTEST-EXIT-CODE
    case $1 in
        0) echo "passed" ;;
        5) echo "FAILED (no tests were collected)" ;;
        *) echo "FAILED (pytest exit code $1)" ;;
    esac
}
echo
echo "test.sh: ruff: $(tool $rc_ruff); mypy: $(tool $rc_mypy);" \
    "SQLite: $(describe $rc_sqlite); PostgreSQL: $(describe $rc_postgresql)"
if [[ $rc_ruff -ne 0 || $rc_mypy -ne 0 || $rc_sqlite -ne 0 || $rc_postgresql -ne 0 ]]; then
    exit 1
fi
