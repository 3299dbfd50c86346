#!/usr/bin/env bash
# Start, stop or inspect aptpipe's central scheduler (luigid): a thin wrapper over
# `python -m aptpipe scheduler ...`.
#
#   scripts/luigid.sh start  [--state-dir DIR] [--host 127.0.0.1] [--port 8082] [--db URL]
#   scripts/luigid.sh stop   [--state-dir DIR]
#   scripts/luigid.sh status [--state-dir DIR] [--json]      (exit 0 running, 3 not running)
#
# APTPIPE_PYTHON: the Python of aptpipe's virtualenv (default: python3 on PATH).
# APTPIPE_SCHEDULER_DIR: default state directory (else var/luigid under the current directory).
set -euo pipefail
exec "${APTPIPE_PYTHON:-python3}" -m aptpipe scheduler "$@"
