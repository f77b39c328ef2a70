#!/usr/bin/env bash
# Start the reference registry, Debian's docker-registry (CNCF Distribution 2.8), on 127.0.0.1 with
# the filesystem driver, for developing or checking Wharf's e2e tests by hand.  (The tests themselves
# spawn it from test/e2e/harness.ts, with the same config.)
#   ref-registry-start.sh STATE_DIR [PORT=5000]     data: STATE_DIR/data   log: STATE_DIR/registry.log
# stdout: REGISTRY_URL=http://127.0.0.1:PORT  REGISTRY_HOST=127.0.0.1:PORT  REGISTRY_DATA=...
# Storage: the filesystem driver under STATE_DIR/data; with REF_STORAGE=swift, Distribution's swift
# driver instead, on SWIFT_AUTH_URL, SWIFT_USER, SWIFT_KEY (as ceph-rgw-start.sh prints them) and
# SWIFT_CONTAINER (default registry), with optional SWIFT_PREFIX and SWIFT_CHUNKSIZE (bytes, >= 1 MiB).
# Stop: ref-registry-stop.sh STATE_DIR [--purge]
set -euo pipefail
DIR=${1:?usage: ref-registry-start.sh STATE_DIR [PORT]}
PORT=${2:-5000}
say() { echo "ref-registry-start: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
for c in docker-registry curl; do command -v "$c" >/dev/null || die "'$c' not found; install it: apt-get install $c"; done
mkdir -p "$DIR/data"; DIR=$(cd "$DIR" && pwd)
[ -s "$DIR/port" ] && PORT=$(cat "$DIR/port")
out() { echo "REGISTRY_URL=http://127.0.0.1:$PORT"; echo "REGISTRY_HOST=127.0.0.1:$PORT"; echo "REGISTRY_DATA=$DIR/data"; }
up() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$PORT/v2/" 2>/dev/null; }
if [ -s "$DIR/pid" ] && [ "$(ps -o comm= -p "$(cat "$DIR/pid")" 2>/dev/null)" = docker-registry ] && up; then
  out; exit 0
fi
case ${REF_STORAGE:-filesystem} in
  filesystem) STORAGE="  filesystem:
    rootdirectory: $DIR/data" ;;
  swift)
    for v in SWIFT_AUTH_URL SWIFT_USER SWIFT_KEY; do [ -n "${!v:-}" ] || die "REF_STORAGE=swift needs $v (see ceph-rgw-start.sh)"; done
    STORAGE="  swift:
    authurl: \"$SWIFT_AUTH_URL\"
    username: \"$SWIFT_USER\"
    password: \"$SWIFT_KEY\"
    container: \"${SWIFT_CONTAINER:-registry}\"${SWIFT_PREFIX:+
    prefix: \"$SWIFT_PREFIX\"}${SWIFT_CHUNKSIZE:+
    chunksize: $SWIFT_CHUNKSIZE}" ;;
  *) die "REF_STORAGE must be filesystem or swift, got $REF_STORAGE" ;;
esac
cat > "$DIR/config.yml" <<CFG
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
$STORAGE
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$PORT
  secret: wharf-e2e-secret
CFG
echo "$PORT" > "$DIR/port"
# AWS_CA_BUNDLE makes distribution's aws-sdk-go panic at start (LoadCustomCABundleError), even with
# the filesystem driver, so it is removed from the environment.
env -u AWS_CA_BUNDLE setsid docker-registry serve "$DIR/config.yml" >>"$DIR/registry.log" 2>&1 </dev/null &
echo $! > "$DIR/pid"
for _ in $(seq 1 100); do
  up && break
  kill -0 "$(cat "$DIR/pid")" 2>/dev/null || { tail -n 20 "$DIR/registry.log" >&2; die "docker-registry exited"; }
  sleep 0.1
done
up || die "docker-registry did not answer on 127.0.0.1:$PORT (log: $DIR/registry.log)"
say "started pid $(cat "$DIR/pid") on 127.0.0.1:$PORT"
out
