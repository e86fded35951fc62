#!/bin/sh
# Exporter stage, step 2: write the model to bake into /export/model.
#   MODEL_PARAMS set: export MODEL_NAME's architecture with weights/MODEL_PARAMS from the build
#                     context (and MODEL_CLASSES, comma-separated, for weights fine-tuned on other classes);
#   otherwise:        download MODEL_NAME's pretrained weights from the GluonCV model zoo and export it;
#                     when the zoo cannot be reached, bake the committed demo model and say so loudly,
#                     or fail when REQUIRE_ZOO_WEIGHTS=1 (release builds).
set -eu
PYTHON=$(command -v python || command -v python3)
OUT=/export/model
if [ -s /run/secrets/ca_bundle ]; then
    export REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle SSL_CERT_FILE=/run/secrets/ca_bundle
fi
cd /export/src
if [ -n "${MODEL_PARAMS:-}" ]; then
    params="/export/weights/$MODEL_PARAMS"
    [ -f "$params" ] || {
        echo "ERROR: MODEL_PARAMS=$MODEL_PARAMS: no such file in weights/ of the build context; put the .params file there" >&2
        exit 1
    }
    echo "exporter: $MODEL_NAME with your weights weights/$MODEL_PARAMS${MODEL_CLASSES:+, classes $MODEL_CLASSES}"
    if [ -n "${MODEL_CLASSES:-}" ]; then
        "$PYTHON" -m ssd_tools.export --model "$MODEL_NAME" --params "$params" --classes "$MODEL_CLASSES" --out "$OUT" >/dev/null
    else
        "$PYTHON" -m ssd_tools.export --model "$MODEL_NAME" --params "$params" --out "$OUT" >/dev/null
    fi
else
    echo "exporter: $MODEL_NAME with pretrained weights from the GluonCV model zoo"
    chosen=$("$PYTHON" -m ssd_tools.export --ensure --model "$MODEL_NAME" --out /export/zoo --fallback /export/demo)
    if [ "$chosen" != /export/zoo ]; then
        cat >&2 <<BANNER
########################################################################################
#  NO PRETRAINED WEIGHTS: the GluonCV model zoo could not be reached from this build.
#  This image will serve the DEMO MODEL (trained on synthetic shapes only), NOT $MODEL_NAME.
#  Every response says so ("demo": true). For a release, build where the zoo is reachable,
#  with REQUIRE_ZOO_WEIGHTS=1 so that this becomes a build failure, or bake your own weights
#  with MODEL_PARAMS (see README).
########################################################################################
BANNER
        if [ "${REQUIRE_ZOO_WEIGHTS:-0}" = 1 ]; then
            echo "ERROR: REQUIRE_ZOO_WEIGHTS=1 and the zoo weights of $MODEL_NAME could not be downloaded" >&2
            echo "       (check the build's network access, --network host and the CA bundle; the reason is above)" >&2
            exit 1
        fi
    fi
    cp -R "$chosen" "$OUT"
fi
if [ "${WITH_INT8:-0}" = 1 ]; then
    # the int8 variant of whatever was chosen above (zoo, your weights, or the demo model), beside it in int8/:
    # the server picks one at start (SSD_PRECISION=auto: int8 on CPUs with VNNI/AMX, else fp32)
    case "${CALIBRATION_IMAGES:-builtin}" in
        builtin)
            # the builtin set, its photos taken out of the wheels (the export holds some out for the check)
            calibration=builtin
            calibration_args="--builtin-photos /export/calibration-photos"
            "$PYTHON" -c 'import sys; from ssd_tools.quantize import extract_builtin_photos as x; print("exporter: builtin photos:", " ".join(x(*sys.argv[1:])))' \
                /export/photo-wheels /export/calibration-photos
            scenes=24 ;;
        *)
            calibration="/export/weights/$CALIBRATION_IMAGES"
            [ -d "$calibration" ] || {
                echo "ERROR: CALIBRATION_IMAGES=$CALIBRATION_IMAGES: no such folder in weights/ of the build context" >&2
                exit 1
            }
            calibration_args=""
            scenes=0 ;;
    esac
    check_args=""
    if [ -n "${CHECK_IMAGES:-}" ]; then
        [ -d "/export/weights/$CHECK_IMAGES" ] || {
            echo "ERROR: CHECK_IMAGES=$CHECK_IMAGES: no such folder in weights/ of the build context" >&2
            exit 1
        }
        check_args="--check-images /export/weights/$CHECK_IMAGES"
    fi
    # the export checks int8 against fp32 on held-out images (the demo model: its labelled scenes; another
    # model: CHECK_IMAGES, else the held-out part of CALIBRATION_IMAGES, else held-out builtin photos and scenes)
    # and keeps layers in fp32 until the check passes; it exits 3 when the check still fails
    echo "exporter: quantizing to int8 (calibration images: ${CALIBRATION_IMAGES:-builtin}) and checking it against fp32"
    status=0
    # shellcheck disable=SC2086
    "$PYTHON" -m ssd_tools.export --quantize int8 --from-export "$OUT" --out /export/model-int8 \
        --calibration-images "$calibration" $calibration_args --calibration-scenes "$scenes" $check_args \
        >/dev/null 2>/export/int8.log || status=$?
    grep -E '^(#|int8 accuracy|  [a-z-]|fallback:|ERROR)' /export/int8.log | grep -v input_sym_arg_type >&2 || true
    case "$status" in
        0)
            mv /export/model-int8 "$OUT/int8"
            # kept in the image, so what the build measured can be read back from it (and the start-up log says it)
            "$PYTHON" -c 'import json, sys
r = json.load(open(sys.argv[1]))["accuracy_check"]
if r.get("metric") == "voc07_map_drop":
    print("compare: mAP=%.4f, reference_mAP=%.4f, drop_points=%.2f (int8 against fp32, %d held-out images)" % (r["int8_map"] / 100, r["fp32_map"] / 100, r["value"], r["images"]["count"]))
print("passed: %s %s %.2f points, limit %.2f (%s), on %d images: %s" % (r["passed"], r["metric"], r["value"], r["limit"], r["direction"], r["images"]["count"], r["images"]["source"]))' \
                "$OUT/int8/model-meta.json" > "$OUT/int8/accuracy-check.txt"
            cat "$OUT/int8/accuracy-check.txt" ;;
        3)
            # what was measured stays beside the model, for build.sh and whoever reads the image
            "$PYTHON" -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["accuracy_check"], open(sys.argv[2], "w"), indent=2, sort_keys=True)' \
                /export/model-int8/model-meta.json "$OUT/int8-not-baked.json"
            rm -rf /export/model-int8
            cat >&2 <<BANNER
########################################################################################
#  NO INT8: the int8 graph of $MODEL_NAME did not pass its accuracy check against fp32
#  (above, with the fallback's tries). This image serves FP32 on every CPU.
#  Calibrate on images like those it will serve (CALIBRATION_IMAGES=a folder under weights/)
#  and check on labelled ones (CHECK_IMAGES, VOC XML beside each image); see docs/int8.md.
#  REQUIRE_INT8=1 makes this a build failure.
########################################################################################
BANNER
            if [ "${REQUIRE_INT8:-0}" = 1 ]; then
                echo "ERROR: REQUIRE_INT8=1 and the int8 graph failed its accuracy check (above)" >&2
                exit 1
            fi ;;
        *)
            cat /export/int8.log >&2
            echo "ERROR: quantizing to int8 failed (above); build with WITH_INT8=0 to bake fp32 only" >&2
            exit 1 ;;
    esac
fi
# readable by the serving image's non-root user, whatever modes the tools above created
chmod -R a+rX "$OUT"
"$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); print("exporter: baking %s (demo: %s, weights: %s, graphs: fp32%s)" % (m["model_name"], m.get("demo", False), m["weights"].get("source"), " + int8" if len(sys.argv) > 2 else ""))' "$OUT/model-meta.json" $( [ -d "$OUT/int8" ] && echo int8 )
