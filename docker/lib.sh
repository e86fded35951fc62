# Shared by the scripts in docker/: step logging with times, failing with advice, picking a docker client.
# Source it; it expects `set -euo pipefail` in the caller.

_SSD_T0=$(date +%s)

# step "what": print the step with the wall-clock time and the seconds since the script started.
step() {
    printf '==> [%s +%ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - _SSD_T0 ))" "$*" >&2
}

# die "what went wrong" "what to do": print both and exit 1.
die() {
    printf 'ERROR: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then printf '       what to do: %s\n' "$2" >&2; fi
    exit 1
}

# CPU priority for heavy work (builds, apt, debootstrap): SSD_NICE=19 keeps a build from slowing
# down other work on a small machine; by default it runs at normal priority.
SSD_NICE=${SSD_NICE:-0}
nicely() {
    nice -n "$SSD_NICE" "$@"
}

engine_running() {
    docker info >/dev/null 2>&1
}

# The command that builds with BuildKit (needed for build secrets, skipped stages and the cache):
# `docker buildx build` where the buildx plugin exists, else a docker client older than 23 with
# DOCKER_BUILDKIT=1 (Debian bookworm's docker.io ships one as /usr/bin/docker; newer clients
# refuse DOCKER_BUILDKIT=1 without buildx). Sets the array BUILD.
pick_builder() {
    if docker buildx version >/dev/null 2>&1; then
        BUILD=(docker buildx build --load)
        return
    fi
    local client version
    for client in docker /usr/bin/docker; do
        command -v "$client" >/dev/null 2>&1 || continue
        version=$("$client" version --format '{{.Client.Version}}' 2>/dev/null || true)
        case "$version" in
            1[0-9].*|20.*|21.*|22.*)
                BUILD=(env DOCKER_BUILDKIT=1 "$(command -v "$client")" build)
                return ;;
        esac
    done
    die "no docker client here can build with BuildKit (need the buildx plugin, or a docker client < 23)" \
        "install the docker buildx plugin, or Debian's docker.io package (its /usr/bin/docker builds with DOCKER_BUILDKIT=1)"
}
