#!/usr/bin/env bash
# Put what the build's int8 accuracy check measured into the built image's labels.
#
#   docker/label-int8.sh IMAGE
#
# The check runs inside the build (docker/exporter/export.sh), after the Dockerfile's LABELs are fixed, so its
# figure can only be labelled afterwards: this reads the record baked beside the model (int8/model-meta.json, or
# int8-not-baked.json when the graph failed) and rebuilds IMAGE as `FROM IMAGE` with these labels (no new layer):
#   ssd.int8               baked | not-baked (failed its check; the image serves fp32) | none (not quantized)
#   ssd.int8.check         the line the server's start-up log prints, e.g. "int8 accuracy check passed: VOC07 mAP
#                          drop 0.05 points (at most 1.00) on 200 images"
#   ssd.int8.check.passed  true | false;  ssd.int8.check.metric, .value, .limit, .images: the figures themselves
# `docker image inspect IMAGE --format '{{json .Config.Labels}}'` shows them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"

[ $# -eq 1 ] || die "usage: docker/label-int8.sh IMAGE" "name the image docker/build.sh just built"
IMAGE=$1
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE" "build it first (docker/build.sh)"

# key=value lines, read by the image's own Python and ssd_serving (the same words as its start-up log)
labels=$(docker run --rm --network none --entrypoint python "$IMAGE" -c 'import json, os
from ssd_serving.precision import check_summary
d = os.environ["SSD_MODEL_DIR"]
baked, failed = os.path.join(d, "int8", "model-meta.json"), os.path.join(d, "int8-not-baked.json")
if os.path.isfile(baked):
    state, record = "baked", json.load(open(baked)).get("accuracy_check") or {}
elif os.path.isfile(failed):
    state, record = "not-baked", json.load(open(failed))
else:
    state, record = "none", None
print("ssd.int8=" + state)
if record is not None:
    line = check_summary(record) if record else "no accuracy check recorded"
    if state == "not-baked":
        line += "; not baked, this image serves fp32"
    print("ssd.int8.check=" + " ".join(line.split()))
    print("ssd.int8.check.passed=" + str(record.get("passed") is True).lower())
    for key in ("metric", "value", "limit"):
        if record.get(key) is not None:
            print("ssd.int8.check.%s=%s" % (key, record[key]))
    print("ssd.int8.check.images=%s" % (record.get("images") or {}).get("count", 0))')

pick_builder
args=()
while IFS= read -r line; do
    [ -n "$line" ] && args+=(--label "$line")
done <<< "$labels"
step "labelling $IMAGE with its int8 check: $(printf '%s' "$labels" | grep -E '^ssd\.int8(\.check)?=' | cut -d= -f2- | paste -sd ';' -)"
printf 'FROM %s\n' "$IMAGE" | "${BUILD[@]}" --quiet "${args[@]}" -t "$IMAGE" - >/dev/null \
    || die "labelling $IMAGE failed (above)" "the image itself is built and usable; rerun docker/label-int8.sh $IMAGE"
