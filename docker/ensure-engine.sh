#!/usr/bin/env bash
# Make sure a Docker engine (and debootstrap, for docker/make-os-image.sh, and docker-compose, for the
# SageMaker SDK's local mode in tests/test_sdk_local.py) is installed and running.
#
# Installs Debian's docker.io and debootstrap when missing, then starts dockerd in the background
# when no engine answers, with the settings that work on machines without iptables or a bridge:
#   dockerd --storage-driver overlay2 --iptables=false --ip6tables=false --bridge=none
# Builds and runs then need `--network host` (or `--network none`); docker/build.sh passes it.
# The engine is left running; it logs to $DOCKERD_LOG and runs at nice $SSD_NICE (default 0).
# Stop it with: kill "$(cat /var/run/docker.pid)"
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/ssd-dockerd.log}
# Debian bookworm's versions; set to empty to take whatever the mirror has.
DOCKER_IO_VERSION=${DOCKER_IO_VERSION-20.10.24+dfsg1-1+deb12u1+b6}
DEBOOTSTRAP_VERSION=${DEBOOTSTRAP_VERSION-1.0.128+nmu2+deb12u2}
DOCKER_COMPOSE_VERSION=${DOCKER_COMPOSE_VERSION-1.29.2-3}
ENGINE_WAIT_SECONDS=${ENGINE_WAIT_SECONDS:-90}

if engine_running; then
    step "a Docker engine is already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    missing=()
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "'$*' needs root" "run this script as root (or install sudo)"
    fi
}

packages=()
if ! command -v dockerd >/dev/null 2>&1 && ! engine_running; then
    packages+=("docker.io${DOCKER_IO_VERSION:+=$DOCKER_IO_VERSION}")
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    packages+=("debootstrap${DEBOOTSTRAP_VERSION:+=$DEBOOTSTRAP_VERSION}")
fi
if ! command -v docker-compose >/dev/null 2>&1; then
    packages+=("docker-compose${DOCKER_COMPOSE_VERSION:+=$DOCKER_COMPOSE_VERSION}")
fi
if [ ${#packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || \
        die "missing ${packages[*]} and no apt-get here" "install a Docker engine and debootstrap with this system's package manager"
    step "installing ${packages[*]} (apt-get, nice $SSD_NICE)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive nice -n "$SSD_NICE" apt-get install -y -q --no-install-recommends "${packages[@]}"; then
        step "install failed; refreshing the package lists and trying again"
        as_root nice -n "$SSD_NICE" apt-get update -q || true
        as_root env DEBIAN_FRONTEND=noninteractive nice -n "$SSD_NICE" apt-get install -y -q --no-install-recommends "${packages[@]}" || \
            die "apt-get could not install ${packages[*]}" \
                "check the Debian mirror; if a pinned version is gone, rerun with DOCKER_IO_VERSION= DEBOOTSTRAP_VERSION= DOCKER_COMPOSE_VERSION= (any version)"
    fi
fi

if engine_running; then
    step "engine running"
    exit 0
fi

step "starting dockerd in the background (nice $SSD_NICE, log $DOCKERD_LOG)"
as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
as_root setsid nohup nice -n "$SSD_NICE" dockerd --storage-driver overlay2 --iptables=false --ip6tables=false \
    --bridge=none >>"$DOCKERD_LOG" 2>&1 </dev/null &

deadline=$(( $(date +%s) + ENGINE_WAIT_SECONDS ))
until engine_running; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        die "dockerd did not answer within ${ENGINE_WAIT_SECONDS}s (log above, full log in $DOCKERD_LOG)" \
            "fix what the log says (overlay2 needs a kernel with overlayfs; another dockerd may hold /var/run/docker.pid), then rerun"
    fi
    sleep 1
done
step "engine running: Docker $(docker version --format '{{.Server.Version}}'), storage $(docker info --format '{{.Driver}}')"
