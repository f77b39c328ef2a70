#!/usr/bin/env bash
# Stop the docker-registry that ref-registry-start.sh started in STATE_DIR (by its pid file only).
#   ref-registry-stop.sh STATE_DIR [--purge]      --purge: delete STATE_DIR too
set -uo pipefail
DIR=; PURGE=0
for a in "$@"; do case $a in --purge) PURGE=1;; *) DIR=$a;; esac; done
[ -n "$DIR" ] || { echo "usage: ref-registry-stop.sh STATE_DIR [--purge]" >&2; exit 2; }
[ -d "$DIR" ] || exit 0
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
if [ -s "$DIR/pid" ]; then
  p=$(cat "$DIR/pid")
  if alive "$p" && [ "$(ps -o comm= -p "$p")" = docker-registry ]; then
    kill -TERM "$p"
    for _ in $(seq 1 50); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p"
  fi
  rm -f "$DIR/pid"
fi
[ "$PURGE" = 1 ] && [ -f "$DIR/config.yml" ] && rm -rf "$DIR"
exit 0
