#!/usr/bin/env bash
# Start a redis-server (Debian package redis-server) on 127.0.0.1 for the redis blob-descriptor
# cache's tests. Idempotent and safe to run concurrently (a lock serialises callers): when it is
# already up, it only prints the details. No persistence (--save '' --appendonly no).
#
#   redis-start.sh [STATE_DIR]          default: $WHARF_REDIS_DIR or /tmp/wharf-redis
#
# Databases are the callers' business (each test file uses its own db number).
# stdout: REDIS_ADDR=127.0.0.1:PORT, REDIS_URL, REDIS_PID, WHARF_REDIS_DIR; progress on stderr.
# Knobs: REDIS_PORT (6379; a restart reuses the port recorded in STATE_DIR), REDIS_MODE:
#   standalone (default)  one server
#   cluster               a Redis Cluster of 3 masters on PORT..PORT+2; also prints REDIS_ADDRS=a,b,c
#   sentinel              a master on PORT watched by one sentinel on PORT+1 as master "wharf";
#                         also prints REDIS_SENTINEL_ADDR and REDIS_MASTER_NAME
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

# A server started earlier keeps its port and mode.
[ -s "$DIR/port" ] && PORT=$(cat "$DIR/port")
MODE=${REDIS_MODE:-standalone}
[ -s "$DIR/mode" ] && MODE=$(cat "$DIR/mode")
case $MODE in standalone|cluster|sentinel) ;; *) die "REDIS_MODE must be standalone, cluster or sentinel" ;; esac
case $MODE in cluster) PORTS="$PORT $((PORT + 1)) $((PORT + 2))" ;; *) PORTS=$PORT ;; esac
print_env() {
  printf 'REDIS_ADDR=127.0.0.1:%s\nREDIS_URL=redis://127.0.0.1:%s/0\nREDIS_PID=%s\nWHARF_REDIS_DIR=%s\n' \
    "$PORT" "$PORT" "$(cat "$DIR/redis-$PORT.pid")" "$DIR"
  [ "$MODE" = cluster ] && printf 'REDIS_ADDRS=%s\n' "$(for p in $PORTS; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')"
  [ "$MODE" = sentinel ] && printf 'REDIS_SENTINEL_ADDR=127.0.0.1:%s\nREDIS_MASTER_NAME=wharf\nREDIS_SENTINEL_PID=%s\n' "$((PORT + 1))" "$(cat "$DIR/sentinel.pid")"
  return 0
}
answers() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }
running() { local p; [ -s "$1" ] || return 1; p=$(cat "$1"); [ "$(ps -o comm= -p "$p" 2>/dev/null)" = redis-server ]; }
ready() {
  for p in $PORTS; do running "$DIR/redis-$p.pid" && answers "$p" || return 1; done
  case $MODE in
    cluster) [ "$(redis-cli -p "$PORT" cluster info 2>/dev/null | tr -d '\r' | grep cluster_state)" = cluster_state:ok ] ;;
    sentinel) running "$DIR/sentinel.pid" && redis-cli -p "$((PORT + 1))" sentinel get-master-addr-by-name wharf 2>/dev/null | grep -q "^$PORT" ;;
  esac
}

if ready; then
  say "already running on 127.0.0.1:$PORT ($MODE, $DIR)"
  print_env
  exit 0
fi
# Whatever is left of an earlier start (e.g. frozen with SIGSTOP) is replaced.
for f in "$DIR"/*.pid; do
  [ -e "$f" ] || continue
  if running "$f"; then kill -CONT "$(cat "$f")" 2>/dev/null; kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
  rm -f "$f"
done
sleep 0.2
for p in $PORTS $([ "$MODE" = sentinel ] && echo $((PORT + 1))); do
  ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && die "127.0.0.1:$p is in use (set REDIS_PORT)"
done
echo "$PORT" > "$DIR/port"
echo "$MODE" > "$DIR/mode"

for p in $PORTS; do
  args=(--bind 127.0.0.1 --port "$p" --protected-mode yes --save '' --appendonly no --daemonize yes
        --pidfile "$DIR/redis-$p.pid" --logfile "$DIR/redis-$p.log" --dir "$DIR")
  # A fresh cluster each start: the node files of an earlier one would name other nodes.
  [ "$MODE" = cluster ] && rm -f "$DIR/nodes-$p.conf" && args+=(--cluster-enabled yes --cluster-config-file "nodes-$p.conf")
  redis-server "${args[@]}" 9>&-
done
for p in $PORTS; do
  for _ in $(seq 1 100); do answers "$p" && [ -s "$DIR/redis-$p.pid" ] && break; sleep 0.05; done
  answers "$p" || die "redis-server did not answer on 127.0.0.1:$p (log: $DIR/redis-$p.log)"
done
case $MODE in
  cluster)
    redis-cli --cluster create $(for p in $PORTS; do echo "127.0.0.1:$p"; done) --cluster-replicas 0 --cluster-yes >&2 9>&- ||
      die "redis-cli --cluster create failed"
    ;;
  sentinel)
    printf 'port %s\nbind 127.0.0.1\ndaemonize yes\npidfile %s\nlogfile %s\ndir %s\nsentinel monitor wharf 127.0.0.1 %s 1\n' \
      "$((PORT + 1))" "$DIR/sentinel.pid" "$DIR/sentinel.log" "$DIR" "$PORT" > "$DIR/sentinel.conf"
    redis-server "$DIR/sentinel.conf" --sentinel 9>&-
    ;;
esac
for _ in $(seq 1 200); do ready && break; sleep 0.05; done
ready || die "redis ($MODE) not ready on 127.0.0.1:$PORT (logs in $DIR)"
say "started ($MODE, pid $(cat "$DIR/redis-$PORT.pid")) on 127.0.0.1:$PORT after $(( ($(date +%s%N) - T0) / 1000000 )) ms"
print_env
