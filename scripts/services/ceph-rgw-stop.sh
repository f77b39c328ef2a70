#!/usr/bin/env bash
# Stop what ceph-rgw-start.sh started, by the pid files of its state dir only.
#   ceph-rgw-stop.sh [STATE_DIR] [--purge]      default: $WHARF_RGW_DIR or /tmp/wharf-ceph-rgw
# A clean stop keeps the data (memstore saves it when the OSD gets SIGTERM). --purge also removes STATE_DIR.
set -uo pipefail
DIR= PURGE=0
for a in "$@"; do case $a in --purge) PURGE=1 ;; *) DIR=$a ;; esac; done
DIR=${DIR:-${WHARF_RGW_DIR:-/tmp/wharf-ceph-rgw}}
[ -d "$DIR" ] || { echo "ceph-rgw-stop: nothing in $DIR" >&2; exit 0; }
exec 9>"$DIR.lock"
flock -w 120 9 || true
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
stop() { # stop NAME COMM: SIGTERM, wait up to 45 s, then SIGKILL; returns 0 on a clean stop
  local f=$DIR/run/$1.pid p i
  [ -s "$f" ] || return 0
  p=$(cat "$f"); rm -f "$f"
  [ "$(ps -o comm= -p "$p" 2>/dev/null)" = "$2" ] && alive "$p" || return 0
  kill -TERM "$p"
  for i in $(seq 450); do alive "$p" || { echo "ceph-rgw-stop: stopped $2 ($p)" >&2; return 0; }; sleep 0.1; done
  kill -KILL "$p"; echo "ceph-rgw-stop: killed $2 ($p)" >&2; return 1
}
# In this order: radosgw needs the OSD to stop cleanly, the OSD needs the mon.
stop client.rgw.a radosgw
stop osd.0 ceph-osd && touch "$DIR/osd.0.clean-stop"
stop mon.a ceph-mon
if [ "$PURGE" = 1 ]; then
  if [ -f "$DIR/.wharf-ceph-rgw" ] || [ -f "$DIR/ceph.conf" ]; then rm -rf "$DIR" "$DIR.lock"; echo "ceph-rgw-stop: removed $DIR" >&2
  else echo "ceph-rgw-stop: $DIR was not made by ceph-rgw-start.sh; left alone" >&2; fi
fi
