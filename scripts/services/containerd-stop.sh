#!/usr/bin/env bash
# Stop the containerd that containerd-start.sh started in STATE_DIR (by its pid file only).
#   containerd-stop.sh STATE_DIR [--purge]     --purge: unmount leftovers and delete STATE_DIR
set -uo pipefail
DIR=; PURGE=0
for a in "$@"; do case $a in --purge) PURGE=1;; *) DIR=$a;; esac; done
[ -n "$DIR" ] || { echo "usage: containerd-stop.sh STATE_DIR [--purge]" >&2; exit 2; }
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd)
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
if [ -s "$DIR/pid" ]; then
  p=$(cat "$DIR/pid")
  if alive "$p" && [ "$(ps -o comm= -p "$p")" = containerd ]; then
    kill -TERM "$p"
    for _ in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p"
  fi
  rm -f "$DIR/pid"
fi
if [ "$PURGE" = 1 ] && [ -f "$DIR/config.toml" ]; then
  # unpacked snapshots may still be mounted
  awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$DIR"
fi
exit 0
