#!/usr/bin/env bash
# Make a virtualenv in .venv, install aptpipe with its test dependencies, and run the tests.
# Extra arguments go to pytest (e.g. -m "not slow" to skip the end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
exec .venv/bin/python -m pytest "$@"
