#!/usr/bin/env bash
# The daily cron job: `aptpipe run "$@"`, one at a time, appended to a log, exit code passed on.
#
#   scripts/cron_daily.sh [--today YYYY-MM-DD] [--workers N] [--local-scheduler]
#
# Environment (all optional):
#   APTPIPE_HOME     working directory: its luigi.cfg is read (default: this repository)
#   APTPIPE          the aptpipe command (default: `aptpipe` on PATH; cron's PATH is short,
#                    so give the full path of the virtualenv's aptpipe in the crontab)
#   APTPIPE_LOG_DIR  where cron_daily.log and the lock live (default: $APTPIPE_HOME/var/log)
#   LUIGI_CONFIG_PATH  an extra config file over luigi.cfg (Luigi's own convention)
#   APTPIPE_ENV_FILE a file of VAR=value lines to export first (e.g. APTPIPE_SERVICE_KEY=...;
#                    keep it readable by the cron user only, never in the crontab or the repo)
#
# Exit codes: aptpipe's own (0 = everything current, 1 = a task failed, 2 = bad input), or
# 75 when another cron_daily.sh still runs (nothing was started; the message says which pid).
# Failure e-mails come from Luigi itself ([email] / [smtp] in luigi.cfg, see docs/operations.md);
# a one-line failure notice also goes to stderr, so cron's MAILTO gets it as well.
set -u -o pipefail

EXIT_LOCKED=75  # EX_TEMPFAIL: try again later

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home=${APTPIPE_HOME:-$here}
aptpipe=${APTPIPE:-aptpipe}
log_dir=${APTPIPE_LOG_DIR:-$home/var/log}
log=$log_dir/cron_daily.log
lock=$log_dir/cron_daily.lock

stamp() { date '+%Y-%m-%dT%H:%M:%S%z'; }

if [ -n "${APTPIPE_ENV_FILE:-}" ]; then
    [ -r "$APTPIPE_ENV_FILE" ] || { echo "cron_daily: cannot read APTPIPE_ENV_FILE=$APTPIPE_ENV_FILE" >&2; exit 2; }
    set -a
    # shellcheck disable=SC1090
    . "$APTPIPE_ENV_FILE"
    set +a
fi

cd "$home" || { echo "cron_daily: cannot cd to APTPIPE_HOME=$home" >&2; exit 2; }
mkdir -p "$log_dir" || { echo "cron_daily: cannot create $log_dir" >&2; exit 2; }

# The lock is held on file descriptor 9 for as long as this script and aptpipe (which inherits
# the descriptor) live; the kernel drops it when they exit, however they exit (even kill -9).
exec 9>>"$lock"
if ! flock --nonblock 9; then
    holder=$(cat "$lock" 2>/dev/null)
    msg="$(stamp) cron_daily: another run is still going (pid ${holder:-unknown}, lock $lock); not starting a second one"
    echo "$msg" >>"$log"
    echo "$msg" >&2
    exit "$EXIT_LOCKED"
fi
echo "$$" >"$lock"

{
    echo "=== $(stamp) cron_daily start (pid $$): $aptpipe run $*"
} >>"$log"
"$aptpipe" run "$@" </dev/null >>"$log" 2>&1
rc=$?
echo "=== $(stamp) cron_daily end (pid $$): exit $rc" >>"$log"
if [ "$rc" -ne 0 ]; then
    echo "$(stamp) cron_daily: aptpipe run $* failed with exit $rc; see $log" >&2
fi
exit "$rc"
