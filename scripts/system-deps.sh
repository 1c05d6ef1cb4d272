#!/usr/bin/env bash
# Ensure the Debian packages the project needs are installed.  Idempotent: a no-op
# (no apt-get at all) when everything is already there.
#
#   bash scripts/system-deps.sh               # everything the test suite needs
#   bash scripts/system-deps.sh --python-only # just what `python3 -m venv` needs (the demo)
#
# Test suite: PostgreSQL 15 server binaries + PostGIS (tests start their own throwaway
# cluster, see tests/pgserver.py), Chromium (browser tests) and Noto CJK fonts (so
# Chinese text renders in screenshots).  Installing `postgresql` may create and start
# Debian's default cluster on port 5432; we do not use it and leave it alone.
set -euo pipefail

python_only=false
case "${1:-}" in
    "") ;;
    --python-only) python_only=true ;;
    *) echo "usage: $0 [--python-only]" >&2; exit 2 ;;
esac

missing=()   # human-readable: what is missing
packages=()  # apt packages to install

# python3 -m venv needs the venv module and ensurepip (Debian: python3-venv).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=("python3 venv/ensurepip modules")
    packages+=(python3-venv)
fi

if [[ $python_only == false ]]; then
    need_test_packages=false
    for f in /usr/lib/postgresql/15/bin/initdb \
             /usr/lib/postgresql/15/bin/pg_ctl \
             /usr/lib/postgresql/15/bin/postgres \
             /usr/share/postgresql/15/extension/postgis.control \
             /usr/bin/chromium \
             /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc; do
        if [[ ! -e $f ]]; then
            missing+=("$f")
            need_test_packages=true
        fi
    done
    if [[ $need_test_packages == true ]]; then
        packages+=(postgresql postgresql-15-postgis-3 chromium fonts-noto-cjk)
    fi
fi

if [[ ${#packages[@]} -eq 0 ]]; then
    exit 0
fi

echo "system-deps: missing: ${missing[*]}" >&2

if [[ $(id -u) -ne 0 ]]; then
    echo "system-deps: not root, so not installing. As root, run:" >&2
    echo "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "system-deps: apt-get not found; this script supports Debian 12. Install the equivalent of: ${packages[*]}" >&2
    exit 1
fi

echo "system-deps: installing ${packages[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -q -y --no-install-recommends -o Dpkg::Use-Pty=0 "${packages[@]}" </dev/null
echo "system-deps: done" >&2
