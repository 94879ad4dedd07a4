#!/usr/bin/env bash
# The test command (README quick start, and what .ci/run calls).
# Installs what the tests need on a fresh machine -- Mosquitto, PostgreSQL and Chromium when missing,
# PyTorch (CPU wheel), the package with its test extras -- then runs ruff, mypy (every
# function typed, see [tool.mypy] in pyproject.toml) and the whole suite.
# Extra arguments go to pytest (e.g. -m "not broker and not real_data and not slow").
# Real data that may not live in the repository is read from $GEOEDGE_TEST_DATA, else
# ../shared/data; without it the tests that need it are skipped, each naming its data set.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests talk to: Mosquitto (brokers), PostgreSQL + PostGIS (the hub's store),
# Chromium (browser tests). Installed only when missing.
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto mosquitto-clients)
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
# PostGIS for the hub's geometry column, matching the server's major version.
pg_major="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
if [ -n "$pg_major" ] && [ ! -f "/usr/share/postgresql/$pg_major/extension/postgis.control" ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "postgresql-$pg_major-postgis-3"
fi

python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test]"
python3 -m ruff check edge export tests bench
python3 -m ruff format --check edge export tests bench
python3 -m mypy
python3 -m pytest "$@"

# Python 3.10 (JetPack 6 ships it): the device's suite again, in a venv of its own without
# PyTorch (training side only: tests/export and the tests that export networks are left out).
# GEOEDGE_SKIP_PY310=1 leaves this pass out on a developer's machine (CI runs it).
if [ "${GEOEDGE_SKIP_PY310:-0}" != "1" ]; then
    py310=""
    if command -v pyenv >/dev/null 2>&1; then
        v310="$(pyenv latest 3.10 2>/dev/null || true)"
        if [ -z "$v310" ]; then
            v310="$(pyenv latest -k 3.10)"
            pyenv install -s "$v310"
        fi
        py310="$(pyenv root)/versions/$v310/bin/python3.10"
    fi
    if [ -z "$py310" ] || ! "$py310" -c "" 2>/dev/null; then
        py310="$(command -v python3.10 || true)"
    fi
    if [ -z "$py310" ] || ! "$py310" -c "" 2>/dev/null; then
        echo "tests/run.sh: Python 3.10 not found (install it, e.g. with pyenv: pyenv install 3.10)" >&2
        exit 1
    fi
    [ -x .venv310/bin/python ] || "$py310" -m venv .venv310
    .venv310/bin/python -m pip install -q -e ".[test-device]"
    .venv310/bin/python -m pytest -p no:cacheprovider -m "not torch" \
        --ignore=tests/export --ignore=tests/models/test_runtime.py "$@"
fi
