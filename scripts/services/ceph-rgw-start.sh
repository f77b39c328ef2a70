#!/usr/bin/env bash
# Start a throw-away single-node Ceph (one mon, one memstore OSD, no mgr, no cephx) and a radosgw
# serving S3 on 127.0.0.1, for the s3 driver's tests.  Idempotent and safe to run concurrently
# (a lock serialises callers): when it is already up, it only prints the connection details.
#
#   ceph-rgw-start.sh [STATE_DIR]          default: $WHARF_RGW_DIR or /tmp/wharf-ceph-rgw
#
# Buckets (Swift containers: the same thing in RGW) are the callers' business (each test file makes its own).
# The user `wharf` has the S3 keys; its subuser `wharf:swift` the Swift key (v1 auth at /auth/v1.0).
# stdout: KEY=value lines (S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, SWIFT_AUTH_URL,
# SWIFT_USER, SWIFT_KEY, SWIFT_STORAGE_URL); progress on stderr.
# Knobs: RGW_PORT (7480), CEPH_MON_PORT (3300), CEPH_MEMSTORE_BYTES (4 GiB), CEPH_START_TIMEOUT (120 s).
# Needs (Debian): ceph-mon ceph-osd radosgw ceph-common ceph-base uuid-runtime curl iproute2 util-linux.
# Stop with ceph-rgw-stop.sh [STATE_DIR] [--purge].
set -euo pipefail
DIR=${1:-${WHARF_RGW_DIR:-/tmp/wharf-ceph-rgw}}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${CEPH_MON_PORT:-3300}
MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-4294967296}
TIMEOUT=${CEPH_START_TIMEOUT:-120}
ACCESS_KEY=wharfaccesskey
SECRET_KEY=wharfsecretkey
SWIFT_USER=wharf:swift
SWIFT_KEY=wharfswiftkey
# 256-bit key for RGW's testing KMS backend (not a secret: test data only)
KMS_KEY=TTM4ggeD4Rs6OXP373zgVVxyJneFHvP+d8sPelHjEco=
say() { echo "ceph-rgw-start: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
T0=$(date +%s%N)
ms() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

for pair in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw radosgw-admin:radosgw ceph:ceph-common \
            monmaptool:ceph-base ceph-authtool:ceph-common uuidgen:uuid-runtime curl:curl ss:iproute2 flock:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || die "'${pair%%:*}' not found: apt-get install ${pair#*:}"
done

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
exec 9>"$DIR.lock"
flock -w "$TIMEOUT" 9 || die "timed out waiting for the lock $DIR.lock"

CONF=$DIR/ceph.conf
export CEPH_CONF=$CONF
MARK=$DIR/.wharf-ceph-rgw

# A cluster made earlier keeps its ports.
if [ -f "$MARK" ] && [ -f "$CONF" ]; then
  RGW_PORT=$(sed -n 's/^rgw frontends = beast endpoint=127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CONF")
  MON_PORT=$(sed -n 's/^mon host = v2:127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CONF")
fi

running() { # running NAME COMM: the pid file names a live, non-zombie COMM process
  local f=$DIR/run/$1.pid p state
  [ -s "$f" ] || return 1
  p=$(cat "$f")
  [ "$(ps -o comm= -p "$p" 2>/dev/null)" = "$2" ] || return 1
  state=$(ps -o stat= -p "$p" 2>/dev/null)
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
rgw_answers() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$RGW_PORT/"; }
wait_until() { # wait_until WHAT COMMAND...
  local what=$1 end=$(( $(date +%s) + TIMEOUT )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out waiting for $what (logs in $DIR/log)"
    sleep 0.2
  done
}
print_env() {
  printf 'S3_ENDPOINT=http://127.0.0.1:%s\nS3_REGION=us-east-1\nS3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\nCEPH_CONF=%s\nWHARF_RGW_DIR=%s\n' \
    "$RGW_PORT" "$ACCESS_KEY" "$SECRET_KEY" "$CONF" "$DIR"
  printf 'SWIFT_AUTH_URL=http://127.0.0.1:%s/auth/v1.0\nSWIFT_USER=%s\nSWIFT_KEY=%s\nSWIFT_STORAGE_URL=http://127.0.0.1:%s/swift/v1\n' \
    "$RGW_PORT" "$SWIFT_USER" "$SWIFT_KEY" "$RGW_PORT"
}
# Swift v1 auth with the subuser's key works (one request: cheap enough for the already-running path).
swift_auth_works() {
  curl -fsS -m 5 -o /dev/null -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" "http://127.0.0.1:$RGW_PORT/auth/v1.0"
}
# The S3 user and its Swift subuser, made when missing (clusters made before Swift was added lack the subuser).
ensure_users() {
  swift_auth_works 2>/dev/null && return 0   # the subuser exists, so its user does
  if ! radosgw-admin user info --uid=wharf >/dev/null 2>&1; then
    radosgw-admin user create --uid=wharf --display-name=wharf --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
  fi
  if ! radosgw-admin user info --uid=wharf 2>/dev/null | grep -q "\"id\": \"$SWIFT_USER\""; then
    radosgw-admin subuser create --uid=wharf --subuser="$SWIFT_USER" --access=full >/dev/null
  fi
  radosgw-admin key create --subuser="$SWIFT_USER" --key-type=swift --secret-key="$SWIFT_KEY" >/dev/null
  wait_until "Swift v1 auth as $SWIFT_USER" swift_auth_works
}

if [ -f "$MARK" ] && running mon.a ceph-mon && running osd.0 ceph-osd && running client.rgw.a radosgw && rgw_answers; then
  say "already running ($DIR)"
  ensure_users
  print_env
  exit 0
fi

# memstore keeps the data in the OSD's memory and writes it out only on a clean stop (the stop script
# leaves osd.0.clean-stop then). After a crash the saved state is stale: start over from nothing.
if [ -f "$MARK" ] && ! running osd.0 ceph-osd && [ ! -f "$DIR/osd.0.clean-stop" ]; then
  say "the OSD in $DIR did not stop cleanly; its data is lost: making a new cluster"
  for n in client.rgw.a:radosgw mon.a:ceph-mon; do
    if running "${n%%:*}" "${n#*:}"; then
      kill -KILL "$(cat "$DIR/run/${n%%:*}.pid")"
      for _ in $(seq 50); do running "${n%%:*}" "${n#*:}" || break; sleep 0.1; done
    fi
  done
  find "$DIR" -mindepth 1 -delete
fi

make_conf() {
  cat >"$CONF" <<EOF
# written by wharf's scripts/services/ceph-rgw-start.sh: one node, loopback only, no cephx
[global]
fsid = $1
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
keyring = $DIR/keyring
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon max pg per osd = 1000
mon data avail crit = 1
mon data avail warn = 2
paxos propose interval = 0.1
mon osd prime pg temp = false
[mon]
mon data = $DIR/mon.\$id
[osd]
osd data = $DIR/osd.\$id
osd objectstore = memstore
osd fast shutdown = false
osd client watch timeout = 15
memstore device bytes = $MEMSTORE_BYTES
osd memory target = 1073741824
osd max object name len = 2048
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw.a
rgw thread pool size = 64
# new buckets get sharded indexes: index updates of concurrent PUTs do not queue on one object
rgw override bucket index max shards = 8
# Deleted objects' data goes within a minute (RGW keeps it 2 h by default; memstore holds it in RAM).
rgw gc obj min wait = 30
rgw gc processor period = 30
# SSE-KMS over plain HTTP with a built-in test key ("keyid: wharf-test-key"): lets the tests store
# encrypted objects, which RGW then refuses to copy server-side
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = wharf-test-key=$KMS_KEY
EOF
}

osd_is_up() { ceph --connect-timeout 15 osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
# The daemons must not inherit the lock's descriptor (9>&-), or they would hold the lock for good.
start_mon() { running mon.a ceph-mon || { in_use "$MON_PORT" && die "port $MON_PORT (CEPH_MON_PORT) is in use"; ceph-mon -i a 9>&-; }; }
start_osd() { running osd.0 ceph-osd || { rm -f "$DIR/osd.0.clean-stop"; ceph-osd -i 0 9>&-; }; }

if [ -f "$MARK" ]; then
  say "restarting the cluster in $DIR"
  make_conf "$(sed -n 's/^fsid = //p' "$CONF")"   # this script's current settings, same cluster
  start_mon
  start_osd
else
  [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty and was not made by this script"
  say "making a new cluster in $DIR"
  mkdir -p "$DIR"/{run,log,crash,mon.a,osd.0,rgw.a}
  FSID=$(uuidgen)
  make_conf "$FSID"
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >>"$DIR/log/setup.log" 2>&1
  start_mon
  OSD_UUID=$(uuidgen)
  [ "$(ceph --connect-timeout 15 osd new "$OSD_UUID")" = 0 ] || die "the new OSD did not get id 0"
  ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$DIR/log/setup.log" 2>&1
  start_osd
fi
wait_until "osd.0" osd_is_up
touch "$MARK"
say "mon and osd up after $(ms)"

if ! running client.rgw.a radosgw; then
  in_use "$RGW_PORT" && die "port $RGW_PORT (RGW_PORT) is in use"
  # radosgw's compiled-in defaults ask for cephx unless overridden on its command line
  radosgw -n client.rgw.a --auth-client-required=none --ms-mon-client-mode=crc 9>&-
fi
wait_until "radosgw on 127.0.0.1:$RGW_PORT" rgw_answers
say "radosgw answers after $(ms)"

ensure_users
say "ready after $(ms)"
print_env
