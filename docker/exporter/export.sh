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
            calibration=/export/calibration-photos
            "$PYTHON" -c 'import sys; from ssd_tools.quantize import extract_builtin_photos as x; print("exporter: calibration photos:", " ".join(x(*sys.argv[1:])))' \
                /export/photo-wheels "$calibration"
            scenes=24 ;;
        *)
            calibration="/export/weights/$CALIBRATION_IMAGES"
            [ -d "$calibration" ] || {
                echo "ERROR: CALIBRATION_IMAGES=$CALIBRATION_IMAGES: no such folder in weights/ of the build context" >&2
                exit 1
            }
            scenes=0 ;;
    esac
    echo "exporter: quantizing to int8 into $OUT/int8, calibration images: ${CALIBRATION_IMAGES:-builtin}"
    "$PYTHON" -m ssd_tools.export --quantize int8 --from-export "$OUT" --out /export/model-int8 \
        --calibration-images "$calibration" --calibration-scenes "$scenes" >/dev/null
    mv /export/model-int8 "$OUT/int8"
    if "$PYTHON" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("demo") else 1)' "$OUT/model-meta.json"; then
        # the demo model is what is baked: its held-out scenes check that int8 lost at most 1 mAP point
        echo "exporter: checking the int8 variant's accuracy against fp32 on the demo's held-out scenes"
        if ! "$PYTHON" -m ssd_tools.demo.evaluate --model-dir "$OUT/int8" --compare-to "$OUT" --max-drop 1.0 \
                >/export/accuracy.log 2>&1; then
            cat /export/accuracy.log >&2
            echo "ERROR: the int8 variant loses more than 1 mAP point against fp32 (above); build with WITH_INT8=0" >&2
            exit 1
        fi
        cat /export/accuracy.log
        # kept in the image, so what the build measured can be read back from it
        grep '^compare:' /export/accuracy.log > "$OUT/int8/accuracy-check.txt"
    fi
fi
# readable by the serving image's non-root user, whatever modes the tools above created
chmod -R a+rX "$OUT"
"$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); print("exporter: baking %s (demo: %s, weights: %s, graphs: fp32%s)" % (m["model_name"], m.get("demo", False), m["weights"].get("source"), " + int8" if len(sys.argv) > 2 else ""))' "$OUT/model-meta.json" $( [ -d "$OUT/int8" ] && echo int8 )
