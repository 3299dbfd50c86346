#!/usr/bin/env bash
# Make a virtualenv in .venv, install aptpipe, and run the daily job on the synthetic market.
# Extra arguments go to `aptpipe run` (e.g. --today 2024-06-15).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/aptpipe run --local-scheduler "$@"
