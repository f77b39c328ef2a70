#!/usr/bin/env bash
# Start Azurite's blob service (npm package "azurite", a devDependency: `npm ci` installs it, so
# nothing is downloaded here) on 127.0.0.1, for the azure driver's tests. Idempotent and safe to
# run concurrently (a lock serialises callers): when it is already up, it only prints the details.
#
#   azurite-start.sh [STATE_DIR]          default: $WHARF_AZURITE_DIR or /tmp/wharf-azurite
#
# Containers are the callers' business (each test file makes its own).
# stdout: KEY=value lines (AZURE_BLOB_ENDPOINT, AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY); progress on stderr.
# Knobs: AZURITE_BLOB_PORT (10000), AZURITE_BIN (default: the project's node_modules/.bin/azurite-blob),
# AZURITE_IN_MEMORY=1 (keep nothing on disk). Stop with azurite-stop.sh [STATE_DIR] [--purge].
#
# Always --disableTelemetry (Azurite would otherwise try to reach the internet), --loose (ignore
# headers it does not know) and --skipApiVersionCheck (the SDK may speak a newer API version).
set -euo pipefail
DIR=${1:-${WHARF_AZURITE_DIR:-/tmp/wharf-azurite}}
PORT=${AZURITE_BLOB_PORT:-10000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${AZURITE_BIN:-$HERE/../../node_modules/.bin/azurite-blob}
# Azurite's fixed, publicly documented development account (not a secret).
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
say() { echo "azurite-start: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
T0=$(date +%s%N)

for pair in curl:curl ss:iproute2 flock:util-linux setsid:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || die "'${pair%%:*}' not found: apt-get install ${pair#*:}"
done
[ -x "$BIN" ] || die "azurite-blob not found at $BIN: run npm ci (azurite is a devDependency)"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
exec 9>"$DIR.lock"
flock -w 60 9 || die "timed out waiting for the lock $DIR.lock"

# A server started earlier keeps its port.
[ -s "$DIR/port" ] && PORT=$(cat "$DIR/port")
EP=http://127.0.0.1:$PORT/$ACCOUNT
print_env() {
  printf 'AZURE_BLOB_ENDPOINT=%s\nAZURE_STORAGE_ACCOUNT=%s\nAZURE_STORAGE_KEY=%s\nWHARF_AZURITE_DIR=%s\n' "$EP" "$ACCOUNT" "$KEY" "$DIR"
}
# Any HTTP answer (403 without a signature) means the blob service is up.
answers() { local c; c=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$EP?comp=list" 2>/dev/null) && [ "$c" != 000 ]; }
running() { local p st; [ -s "$DIR/pid" ] || return 1; p=$(cat "$DIR/pid"); st=$(ps -o stat= -p "$p" 2>/dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }

if running && answers; then
  say "already running on 127.0.0.1:$PORT ($DIR)"
  print_env
  exit 0
fi
if running; then kill -TERM "$(cat "$DIR/pid")" 2>/dev/null || true; sleep 0.5; fi
ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && die "127.0.0.1:$PORT is in use (set AZURITE_BLOB_PORT)"

ARGS=(--blobHost 127.0.0.1 --blobPort "$PORT" --silent --loose --skipApiVersionCheck --disableTelemetry)
if [ "${AZURITE_IN_MEMORY:-0}" = 1 ]; then ARGS+=(--inMemoryPersistence)
else mkdir -p "$DIR/data"; ARGS+=(--location "$DIR/data"); fi
echo "$PORT" > "$DIR/port"
# setsid: the server outlives the test process that started it (later test files reuse it).
(cd "$DIR" && exec setsid "$BIN" "${ARGS[@]}" >>"$DIR/azurite.log" 2>&1 </dev/null 9>&-) &
echo $! > "$DIR/pid"
for _ in $(seq 1 300); do
  answers && break
  running || { tail -5 "$DIR/azurite.log" >&2; die "azurite exited (log: $DIR/azurite.log)"; }
  sleep 0.1
done
answers || die "azurite did not answer on 127.0.0.1:$PORT (log: $DIR/azurite.log)"
say "started (pid $(cat "$DIR/pid")) on 127.0.0.1:$PORT after $(( ($(date +%s%N) - T0) / 1000000 )) ms"
print_env
