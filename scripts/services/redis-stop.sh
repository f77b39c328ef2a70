#!/usr/bin/env bash
# Stop what redis-start.sh started, by the pid file of its state dir only.
#   redis-stop.sh [STATE_DIR] [--purge]      default: $WHARF_REDIS_DIR or /tmp/wharf-redis
# --purge also removes STATE_DIR.
set -uo pipefail
DIR= PURGE=0
for a in "$@"; do case $a in --purge) PURGE=1 ;; *) DIR=$a ;; esac; done
DIR=${DIR:-${WHARF_REDIS_DIR:-/tmp/wharf-redis}}
[ -d "$DIR" ] || { echo "redis-stop: nothing in $DIR" >&2; exit 0; }
exec 9>"$DIR.lock"
flock -w 60 9 || true
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
for f in "$DIR"/*.pid; do
  [ -s "$f" ] || continue
  p=$(cat "$f")
  if [ "$(ps -o comm= -p "$p" 2>/dev/null)" = redis-server ]; then
    kill -CONT "$p" 2>/dev/null  # a server stopped with SIGSTOP cannot handle SIGTERM
    kill -TERM "$p"
    for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done
    alive "$p" && { kill -KILL "$p"; echo "redis-stop: killed $p" >&2; } || echo "redis-stop: stopped $p" >&2
  fi
  rm -f "$f"
done
if [ "$PURGE" = 1 ]; then
  if [ -f "$DIR/port" ]; then rm -rf "$DIR" "$DIR.lock"; echo "redis-stop: removed $DIR" >&2
  else echo "redis-stop: $DIR was not made by redis-start.sh; left alone" >&2; fi
fi
