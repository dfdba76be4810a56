#!/usr/bin/env bash
# One set-up step, quietly: one summary line on the terminal, the command's whole output appended to
# LOG; on failure the end of the log is shown and the command's exit status returned.
# Usage: scripts/quietly.sh LOG "what it does" COMMAND [ARG...]
set -uo pipefail
log=$1 what=$2
shift 2
printf '%s ... ' "$what"
{ echo "== $(date -u '+%F %T') $what: $*"; "$@"; } >>"$log" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
  echo "done"
else
  echo "FAILED (exit $rc); the end of $log:"
  tail -n 20 "$log"
fi
exit "$rc"
