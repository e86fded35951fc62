#!/usr/bin/env bash
# Build the SSD serving image.
#
#   docker/build.sh cpu|gpu|ei [docker build options...]
#       on a local stand-in base: makes the OS image if missing (docker/make-os-image.sh), builds the
#       stand-in base (docker/base/Dockerfile, target cpu, gpu or ei), then the top Dockerfile on it
#   docker/build.sh aws-cpu|aws-gpu|aws-eia [docker build options...]
#       on AWS's last MXNet inference images (run `docker login` to their ECR registry first):
#       aws-cpu  mxnet-inference:1.9.0-cpu-py38-ubuntu20.04-sagemaker (fp32 + int8, chosen by the CPU at start)
#       aws-gpu  mxnet-inference:1.9.0-gpu-py38-cu112-ubuntu20.04-sagemaker (fp32; CUDA 11.2: T4 g4dn, A10G g5)
#       aws-eia  mxnet-inference-eia:1.4.1-cpu-py36-ubuntu16.04 (fp32; Elastic Inference, closed to new customers)
#   docker/build.sh aws-cpu-1.4|aws-gpu-1.4 [docker build options...]
#       legacy: AWS's MXNet 1.4.1 CPU and GPU images (no oneDNN fusion, no int8, CUDA 10.0: no g5)
#
# The cpu and aws-cpu targets bake the int8 variant too (--build-arg WITH_INT8=1; pass WITH_INT8=0 to skip).
# Options after the target go to the top image's build, e.g. --build-arg MODEL_NAME=ssd_512_mobilenet1.0_voc,
# --build-arg REQUIRE_ZOO_WEIGHTS=1, --build-arg MODEL_PARAMS=my.params --build-arg MODEL_CLASSES=a,b.
# Environment:
#   IMAGE        tag of the result (default ssd-serving:TARGET)
#   CA_BUNDLE    CA bundle passed as build secret for pip and downloads behind a TLS-inspecting proxy
#                (default: /etc/ssl/certs/ca-certificates.crt when it exists; CA_BUNDLE= passes none).
#                It is mounted during the RUN steps that download, never stored in an image.
#   BUILD_NETWORK  network for RUN steps (default host: needed where the engine has no bridge)
#   REGION       AWS region of the aws-* bases (default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)
#   OS_IMAGE     Debian image for the stand-ins (default ssd-local/debian:bookworm)
#   LOG_DIR      where build logs go (default build/docker-logs)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
source "$HERE/lib.sh"

usage() {
    die "usage: docker/build.sh cpu|gpu|ei|aws-cpu|aws-gpu|aws-eia|aws-cpu-1.4|aws-gpu-1.4 [docker build options...]" \
        "pick a target: cpu, gpu or ei build on local stand-in bases, aws-* on AWS's images"
}
[ $# -ge 1 ] || usage
TARGET=$1
shift
case "$TARGET" in cpu|gpu|ei|aws-cpu|aws-gpu|aws-eia|aws-cpu-1.4|aws-gpu-1.4) ;; *) usage ;; esac
IMAGE=${IMAGE:-ssd-serving:$TARGET}
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
BUILD_NETWORK=${BUILD_NETWORK:-host}
OS_IMAGE=${OS_IMAGE:-ssd-local/debian:bookworm}
LOG_DIR=${LOG_DIR:-$ROOT/build/docker-logs}
mkdir -p "$LOG_DIR"

declare -a SUMMARY=()
STARTED=$(date +%s)

# stage_times LOG: seconds per Dockerfile stage, from BuildKit's plain progress output
stage_times() {
    awk '
        match($0, /^#[0-9]+ \[[^] ]+/) { id = substr($1, 2); split(substr($0, RSTART + length($1) + 2), p, /[] ]/); if (!(id in stage)) stage[id] = p[1] }
        /^#[0-9]+ DONE [0-9.]+s$/ { id = substr($1, 2); if (id in stage) { t[stage[id]] += $3 + 0; if (!(stage[id] in seen)) { seen[stage[id]] = 1; order[++n] = stage[id] } } }
        /^#[0-9]+ CACHED$/ { id = substr($1, 2); if (id in stage && !(stage[id] in seen)) { seen[stage[id]] = 1; order[++n] = stage[id] } }
        END { for (i = 1; i <= n; i++) printf "%s %.1fs; ", order[i], t[order[i]] }
    ' "$1"
}

size_of() {
    docker image inspect "$1" --format '{{.Size}}' | awk '{printf "%.0f MB", $1 / 1e6}'
}

# build NAME LOG [docker build arguments...]: one BuildKit build, its output shown and logged
build() {
    local name=$1 log=$2
    shift 2
    local secret=()
    if [ -n "$CA_BUNDLE" ]; then secret=(--secret "id=ca_bundle,src=$CA_BUNDLE"); fi
    local t0
    t0=$(date +%s)
    if ! "${BUILD[@]}" --progress=plain --network "$BUILD_NETWORK" "${secret[@]}" "$@" 2>&1 | tee "$log"; then
        if grep -q CERTIFICATE_VERIFY_FAILED "$log"; then
            die "building $name failed: TLS certificate verification failed (log: $log)" \
                "pass the CA bundle of your proxy: CA_BUNDLE=/path/to/ca-bundle.crt docker/build.sh $TARGET"
        fi
        if grep -qE "network bridge not found|failed to create endpoint|Temporary failure in name resolution|Could not resolve" "$log"; then
            die "building $name failed: no network in the build (log: $log)" \
                "build with BUILD_NETWORK=host (the default) on an engine started by docker/ensure-engine.sh"
        fi
        die "building $name failed (log: $log; the error is at its end)" \
            "fix what the log says; a pinned Debian version that the mirror no longer has needs a new pin in docker/base/Dockerfile"
    fi
    SUMMARY+=("$name: $(( $(date +%s) - t0 ))s (stages: $(stage_times "$log"))")
}

step "checking the Docker engine"
engine_running || die "no Docker engine answers" "run docker/ensure-engine.sh (as root) to install and start one"
pick_builder
step "building with: ${BUILD[*]}"
if [ -n "$CA_BUNDLE" ]; then
    [ -s "$CA_BUNDLE" ] || die "CA_BUNDLE=$CA_BUNDLE does not exist" "point CA_BUNDLE at a CA bundle, or set CA_BUNDLE= to pass none"
    step "passing the CA bundle $CA_BUNDLE as build secret ca_bundle (not stored in the image)"
fi

top_args=()
case "$TARGET" in
    cpu|aws-cpu) top_args+=(--build-arg WITH_INT8=1) ;;  # a later --build-arg WITH_INT8=0 wins
esac
case "$TARGET" in
    cpu|gpu|ei)
        if docker image inspect "$OS_IMAGE" >/dev/null 2>&1; then
            step "OS image $OS_IMAGE is there"
        else
            step "making the OS image $OS_IMAGE (docker/make-os-image.sh)"
            t0=$(date +%s)
            "$HERE/make-os-image.sh" "$OS_IMAGE"
            SUMMARY+=("OS image: $(( $(date +%s) - t0 ))s")
        fi
        case "$TARGET" in
            ei) BASE=${BASE:-ssd-local/mxnet-inference-eia:1.4.1-cpu-standin} ;;
            cpu) BASE=${BASE:-ssd-local/mxnet-inference:1.9.0-cpu-standin} ;;
            gpu) BASE=${BASE:-ssd-local/mxnet-inference:1.9.0-gpu-standin} ;;
        esac
        step "building the $TARGET stand-in base $BASE (docker/base/Dockerfile)"
        build "stand-in base" "$LOG_DIR/base-$TARGET.log" -f "$ROOT/docker/base/Dockerfile" --target "$TARGET" \
            --build-arg "OS_IMAGE=$OS_IMAGE" -t "$BASE" "$ROOT"
        top_args+=(--build-arg "BASE_IMAGE=$BASE")
        ;;
    aws-*)
        REGION=${REGION:-${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}}
        case "$REGION" in
            af-south-1) ACCOUNT=626614931356 ;;
            ap-east-1) ACCOUNT=871362719292 ;;
            ap-northeast-3) ACCOUNT=364406365360 ;;
            eu-south-1) ACCOUNT=692866216735 ;;
            me-south-1) ACCOUNT=217643126080 ;;
            cn-*) ACCOUNT=727897471807 ;;
            us-gov-west-1) ACCOUNT=442386744353 ;;
            us-iso-east-1) ACCOUNT=886529160074 ;;
            *) ACCOUNT=763104351884 ;;
        esac
        case "$REGION" in cn-*) DOMAIN=amazonaws.com.cn ;; *) DOMAIN=amazonaws.com ;; esac
        REGISTRY=$ACCOUNT.dkr.ecr.$REGION.$DOMAIN
        # MXNet built for CUDA cannot be imported without a GPU driver: the gpu targets export on the CPU image
        case "$TARGET" in
            aws-cpu) BASE=$REGISTRY/mxnet-inference:1.9.0-cpu-py38-ubuntu20.04-sagemaker ;;
            aws-gpu) BASE=$REGISTRY/mxnet-inference:1.9.0-gpu-py38-cu112-ubuntu20.04-sagemaker
                     EXPORTER=$REGISTRY/mxnet-inference:1.9.0-cpu-py38-ubuntu20.04-sagemaker ;;
            aws-eia) BASE=$REGISTRY/mxnet-inference-eia:1.4.1-cpu-py36-ubuntu16.04 ;;
            aws-cpu-1.4) BASE=$REGISTRY/mxnet-inference:1.4.1-cpu-py36-ubuntu16.04 ;;
            aws-gpu-1.4) BASE=$REGISTRY/mxnet-inference:1.4.1-gpu-py36-cu100-ubuntu16.04
                         EXPORTER=$REGISTRY/mxnet-inference:1.4.1-cpu-py36-ubuntu16.04 ;;
        esac
        login="log in first: aws ecr get-login-password --region $REGION | docker login --username AWS --password-stdin $REGISTRY (or build a stand-in: docker/build.sh cpu|gpu|ei)"
        for image in "$BASE" ${EXPORTER:+"$EXPORTER"}; do
            step "AWS image: $image"
            docker image inspect "$image" >/dev/null 2>&1 || docker pull "$image" || die "cannot pull $image" "$login"
        done
        if [ -n "${EXPORTER:-}" ]; then top_args+=(--build-arg "EXPORTER_IMAGE=$EXPORTER"); fi
        top_args+=(--build-arg "BASE_IMAGE=$BASE")
        ;;
    *) usage ;;
esac

step "building $IMAGE on $BASE (Dockerfile)"
build "serving image" "$LOG_DIR/image-$TARGET.log" -f "$ROOT/Dockerfile" "${top_args[@]}" "$@" -t "$IMAGE" "$ROOT"
# the int8 check ran inside that build, after the Dockerfile's LABELs: its figure goes into the labels now
"$HERE/label-int8.sh" "$IMAGE"

baked=$(docker run --rm --network none --entrypoint python "$IMAGE" -c 'import json, os
d = os.environ["SSD_MODEL_DIR"]
m = json.load(open(os.path.join(d, "model-meta.json")))
graphs = "fp32 + int8" if os.path.isdir(os.path.join(d, "int8")) else "fp32"
if os.path.isfile(os.path.join(d, "int8-not-baked.json")):
    graphs += "; int8 NOT baked: it failed its accuracy check (%s)" % json.load(open(os.path.join(d, "int8-not-baked.json"))).get("reason")
print("%s (demo: %s, weights: %s, graphs: %s)" % (m["model_name"], str(m.get("demo", False)).lower(), m["weights"].get("source"), graphs))')
step "done in $(( $(date +%s) - STARTED ))s"
for line in "${SUMMARY[@]}"; do printf '    %s\n' "$line" >&2; done
printf '    base %s: %s\n' "$BASE" "$(size_of "$BASE")" >&2
printf '    image %s: %s\n' "$IMAGE" "$(size_of "$IMAGE")" >&2
printf '    baked model: %s\n' "$baked" >&2
case "$baked" in
    *"int8 NOT baked"*)
    printf '    WARNING: int8 did not pass its accuracy check: this image serves fp32 on every CPU (docs/int8.md).\n' >&2
    printf '             Give CALIBRATION_IMAGES and CHECK_IMAGES like the images it will serve; REQUIRE_INT8=1 fails the build.\n' >&2 ;;
esac
case "$baked" in
    *"demo: true"*)
    printf '    WARNING: the GluonCV model zoo could not be reached: this image serves the DEMO model.\n' >&2
    printf '             Build with --build-arg REQUIRE_ZOO_WEIGHTS=1 to make that a failure (releases).\n' >&2 ;;
esac
printf '    run it: docker run --rm -p 8080:8080 %s serve   (with --network host where the engine has no bridge)\n' "$IMAGE" >&2
