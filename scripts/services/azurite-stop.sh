#!/usr/bin/env bash
# Stop what azurite-start.sh started, by the pid file of its state dir only.
#   azurite-stop.sh [STATE_DIR] [--purge]      default: $WHARF_AZURITE_DIR or /tmp/wharf-azurite
# --purge also removes STATE_DIR (Azurite's data).
set -uo pipefail
DIR= PURGE=0
for a in "$@"; do case $a in --purge) PURGE=1 ;; *) DIR=$a ;; esac; done
DIR=${DIR:-${WHARF_AZURITE_DIR:-/tmp/wharf-azurite}}
[ -d "$DIR" ] || { echo "azurite-stop: nothing in $DIR" >&2; exit 0; }
exec 9>"$DIR.lock"
flock -w 60 9 || true
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
if [ -s "$DIR/pid" ]; then
  p=$(cat "$DIR/pid"); rm -f "$DIR/pid"
  if alive "$p"; then
    kill -TERM "$p"
    for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
    alive "$p" && { kill -KILL "$p"; echo "azurite-stop: killed $p" >&2; } || echo "azurite-stop: stopped $p" >&2
  fi
fi
if [ "$PURGE" = 1 ]; then
  if [ -f "$DIR/port" ]; then rm -rf "$DIR" "$DIR.lock"; echo "azurite-stop: removed $DIR" >&2
  else echo "azurite-stop: $DIR was not made by azurite-start.sh; left alone" >&2; fi
fi
