#!/usr/bin/env bash
# Build OCI image layouts for Wharf's e2e tests (no network needed except for `debian`).
#
#   make-test-image.sh tiny   LAYOUT TAG [MB=2] [ARCH=amd64]
#       2-layer image: a few small text files, then MB MiB of random (incompressible) data.
#       Each call gives a different image (fresh random data).  Takes about a second.
#   make-test-image.sh debian LAYOUT [SUITE=bookworm]
#       debootstrap --variant=minbase rootfs in one gzip layer (root only, ~30-40 s, ~50 MB layer).
#
# LAYOUT is an OCI image layout directory (created when missing; several tags may share one layout).
# stdout: OCI_LAYOUT=...  OCI_TAG=...   Progress and errors go to stderr.
# Env: DEBIAN_MIRROR (default: first URIs:/deb line of apt's sources, else http://deb.debian.org/debian)
set -euo pipefail
KIND=${1:?usage: make-test-image.sh tiny|debian LAYOUT [...]}
OUT=${2:?LAYOUT missing}
say() { echo "make-test-image: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
for c in umoci; do command -v "$c" >/dev/null || die "'$c' not found; install it: apt-get install $c"; done

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
[ -f "$OUT/oci-layout" ] || { rm -rf "$OUT"; umoci init --layout "$OUT"; }
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/wharf-mkimg.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

case $KIND in
  tiny)
    TAG=${3:?TAG missing}; MB=${4:-2}; ARCH=${5:-amd64}
    umoci new --image "$OUT:$TAG"
    umoci unpack --rootless --image "$OUT:$TAG" "$SCRATCH/one" >/dev/null
    mkdir -p "$SCRATCH/one/rootfs/etc"
    printf 'wharf e2e image %s (%s)\n' "$TAG" "$ARCH" > "$SCRATCH/one/rootfs/etc/hello.txt"
    printf '#!/bin/sh\ncat /etc/hello.txt\n' > "$SCRATCH/one/rootfs/hello.sh"
    chmod 755 "$SCRATCH/one/rootfs/hello.sh"
    umoci repack --image "$OUT:$TAG" "$SCRATCH/one"
    umoci unpack --rootless --image "$OUT:$TAG" "$SCRATCH/two" >/dev/null
    head -c "$((MB * 1024 * 1024))" /dev/urandom > "$SCRATCH/two/rootfs/random.bin"
    umoci repack --image "$OUT:$TAG" "$SCRATCH/two"
    umoci config --image "$OUT:$TAG" --os linux --architecture "$ARCH" \
      --config.cmd /hello.sh --config.label "org.example.wharf-e2e=$TAG"
    ;;
  debian)
    TAG=${3:-bookworm}
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    command -v debootstrap >/dev/null || die "'debootstrap' not found; install it: apt-get install debootstrap"
    MIRROR=${DEBIAN_MIRROR:-}
    if [ -z "$MIRROR" ]; then
      MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1=="URIs:"{print $2}' | grep -v -- -security | head -n1 || true)
      [ -n "$MIRROR" ] || MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                                   awk '$1=="deb"{print $2}' | grep -v -- -security | head -n1 || true)
      MIRROR=${MIRROR:-http://deb.debian.org/debian}
    fi
    say "debootstrap --variant=minbase $TAG from $MIRROR"
    debootstrap --variant=minbase "$TAG" "$SCRATCH/rootfs" "$MIRROR" >"$SCRATCH/debootstrap.log" 2>&1 ||
      { tail -n 30 "$SCRATCH/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$SCRATCH"/rootfs/var/cache/apt/archives/*.deb "$SCRATCH"/rootfs/var/lib/apt/lists/* \
           "$SCRATCH"/rootfs/dev/* "$SCRATCH"/rootfs/var/log/*.log "$SCRATCH"/rootfs/var/log/apt/*
    umoci new --image "$OUT:$TAG"
    umoci insert --image "$OUT:$TAG" "$SCRATCH/rootfs" /
    umoci config --image "$OUT:$TAG" --os linux --architecture amd64 --config.cmd /bin/bash \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    ;;
  *) die "unknown kind '$KIND' (tiny|debian)" ;;
esac
umoci gc --layout "$OUT"
echo "OCI_LAYOUT=$OUT"
echo "OCI_TAG=$TAG"
