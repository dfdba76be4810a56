#!/usr/bin/env bash
# Install those of the named Debian packages that are not installed yet (apt-get, so root), quietly
# through scripts/quietly.sh: one line here, apt's output in LOG. Nothing to install: no apt at all.
# Usage: scripts/setup-apt.sh LOG "what they are for" PACKAGE...
set -uo pipefail
log=$1 what=$2
shift 2
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "$what: $* already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "$what: needs the Debian package(s) ${missing[*]}; run this as root on Debian/Ubuntu," \
       "or install them yourself (apt-get install ${missing[*]})" >&2
  exit 1
fi
exec "$(dirname "$0")/quietly.sh" "$log" "$what: apt-get install ${missing[*]} (log: $log)" \
  bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"' apt-get "${missing[@]}"
