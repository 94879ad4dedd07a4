#!/usr/bin/env bash
# The test command (README quick start, and what .ci/run calls).
# Installs what the tests need on a fresh machine -- Mosquitto when it is missing,
# PyTorch (CPU wheel), the package with its test extras -- then runs ruff, mypy (every
# function typed, see [tool.mypy] in pyproject.toml) and the whole suite.
# Extra arguments go to pytest (e.g. -m "not broker and not real_data and not slow").
# Real data that may not live in the repository is read from $GEOEDGE_TEST_DATA, else
# ../shared/data; without it the tests that need it are skipped, each naming its data set.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq mosquitto mosquitto-clients
fi

python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test]"
python3 -m ruff check edge export tests bench
python3 -m ruff format --check edge export tests bench
python3 -m mypy
python3 -m pytest "$@"
