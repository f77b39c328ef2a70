#!/usr/bin/env bash
# Start a private containerd (root) for Wharf's `ctr` tests: all state under STATE_DIR, a unix socket
# only (no TCP), the CRI plugin disabled.  Idempotent: if it already runs, it only prints the address.
#   containerd-start.sh STATE_DIR
# stdout: CONTAINERD_ADDRESS=STATE_DIR/containerd.sock   CONTAINERD_PID=...
# Stop: containerd-stop.sh STATE_DIR [--purge]
set -euo pipefail
DIR=${1:?usage: containerd-start.sh STATE_DIR}
say() { echo "containerd-start: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
[ "$(id -u)" = 0 ] || die "containerd needs root"
for c in containerd ctr; do command -v "$c" >/dev/null || die "'$c' not found; install it: apt-get install containerd"; done
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
SOCK=$DIR/containerd.sock
# unix socket paths are limited to 108 bytes
[ ${#SOCK} -lt 100 ] || die "state dir path too long for a unix socket: $SOCK"
if [ -s "$DIR/pid" ] && alive "$(cat "$DIR/pid")" && ctr -a "$SOCK" version >/dev/null 2>&1; then
  echo "CONTAINERD_ADDRESS=$SOCK"; echo "CONTAINERD_PID=$(cat "$DIR/pid")"; exit 0
fi
cat > "$DIR/config.toml" <<CFG
version = 2
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$DIR/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"
CFG
setsid containerd --config "$DIR/config.toml" >>"$DIR/containerd.log" 2>&1 </dev/null &
echo $! > "$DIR/pid"
for _ in $(seq 1 150); do
  ctr -a "$SOCK" version >/dev/null 2>&1 && break
  alive "$(cat "$DIR/pid")" || { tail -n 20 "$DIR/containerd.log" >&2; die "containerd exited"; }
  sleep 0.1
done
ctr -a "$SOCK" version >/dev/null 2>&1 || die "containerd did not answer on $SOCK (log: $DIR/containerd.log)"
say "started pid $(cat "$DIR/pid")"
echo "CONTAINERD_ADDRESS=$SOCK"
echo "CONTAINERD_PID=$(cat "$DIR/pid")"
