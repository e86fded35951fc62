#!/usr/bin/env bash
# Make the Debian bookworm OS image the stand-in bases start from, where no image can be pulled:
#   debootstrap --variant=minbase bookworm ROOTFS MIRROR, then tar ROOTFS | docker import.
# Usage: docker/make-os-image.sh [TAG]   (default ssd-local/debian:bookworm; needs root)
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR, FORCE=1 to remake.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TAG=${1:-ssd-local/debian:bookworm}
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

engine_running || die "no Docker engine answers" "run docker/ensure-engine.sh first"
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    step "OS image $TAG already exists (FORCE=1 remakes it)"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root" "run this script as root (or with sudo)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed" "run docker/ensure-engine.sh (it installs it) or apt-get install debootstrap"

rootfs=$(mktemp -d /var/tmp/ssd-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

step "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR (nice $SSD_NICE)"
nicely debootstrap --variant=minbase "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    die "debootstrap failed (log above)" "check that $DEBIAN_MIRROR is reachable (set DEBIAN_MIRROR to a mirror that is), then rerun"
}
rm -f "$rootfs.log"

step "configuring apt sources (release, updates, security) and trimming caches"
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $SUITE-security main
SOURCES
# like the official Debian images: no docs, no recommends, no apt caches
cat >"$rootfs/etc/apt/apt.conf.d/90ssd-minimal" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log

step "importing the root file system as $TAG"
nicely tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
    --message "debootstrap --variant=minbase $SUITE $DEBIAN_MIRROR ($(date -u +%Y-%m-%dT%H:%M:%SZ))" \
    - "$TAG" >/dev/null
step "made $TAG ($(docker image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
