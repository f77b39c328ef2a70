#!/usr/bin/env bash
# Start a redis-server (Debian package redis-server) on 127.0.0.1 for the redis blob-descriptor
# cache's tests. Idempotent and safe to run concurrently (a lock serialises callers): when it is
# already up, it only prints the details. No persistence (--save '' --appendonly no).
#
#   redis-start.sh [STATE_DIR]          default: $WHARF_REDIS_DIR or /tmp/wharf-redis
#
# Databases are the callers' business (each test file uses its own db number).
# stdout: REDIS_ADDR=127.0.0.1:PORT, REDIS_URL, REDIS_PID, WHARF_REDIS_DIR; progress on stderr.
# Knobs: REDIS_PORT (6379; a restart reuses the port recorded in STATE_DIR).
# Stop with redis-stop.sh [STATE_DIR] [--purge].
set -euo pipefail
DIR=${1:-${WHARF_REDIS_DIR:-/tmp/wharf-redis}}
PORT=${REDIS_PORT:-6379}
say() { echo "redis-start: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
T0=$(date +%s%N)

for pair in redis-server:redis-server redis-cli:redis-tools ss:iproute2 flock:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || die "'${pair%%:*}' not found: apt-get install ${pair#*:}"
done

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
exec 9>"$DIR.lock"
flock -w 60 9 || die "timed out waiting for the lock $DIR.lock"

# A server started earlier keeps its port.
[ -s "$DIR/port" ] && PORT=$(cat "$DIR/port")
print_env() {
  printf 'REDIS_ADDR=127.0.0.1:%s\nREDIS_URL=redis://127.0.0.1:%s/0\nREDIS_PID=%s\nWHARF_REDIS_DIR=%s\n' \
    "$PORT" "$PORT" "$(cat "$DIR/redis.pid")" "$DIR"
}
answers() { [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; }
running() { local p; [ -s "$DIR/redis.pid" ] || return 1; p=$(cat "$DIR/redis.pid"); [ "$(ps -o comm= -p "$p" 2>/dev/null)" = redis-server ]; }

if running && answers; then
  say "already running on 127.0.0.1:$PORT ($DIR)"
  print_env
  exit 0
fi
# A server that stopped answering (e.g. left stopped with SIGSTOP) is replaced.
if running; then kill -CONT "$(cat "$DIR/redis.pid")" 2>/dev/null; kill -TERM "$(cat "$DIR/redis.pid")" 2>/dev/null || true; sleep 0.3; fi
rm -f "$DIR/redis.pid"
ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && die "127.0.0.1:$PORT is in use (set REDIS_PORT)"

echo "$PORT" > "$DIR/port"
redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode yes --save '' --appendonly no \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR" 9>&-
for _ in $(seq 1 100); do
  answers && break
  sleep 0.05
done
answers || die "redis-server did not answer on 127.0.0.1:$PORT (log: $DIR/redis.log)"
for _ in $(seq 1 20); do [ -s "$DIR/redis.pid" ] && break; sleep 0.05; done
say "started (pid $(cat "$DIR/redis.pid")) on 127.0.0.1:$PORT after $(( ($(date +%s%N) - T0) / 1000000 )) ms"
print_env
