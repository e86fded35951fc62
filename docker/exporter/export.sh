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
        "$PYTHON" -m ssd_serving.export --model "$MODEL_NAME" --params "$params" --classes "$MODEL_CLASSES" --out "$OUT" >/dev/null
    else
        "$PYTHON" -m ssd_serving.export --model "$MODEL_NAME" --params "$params" --out "$OUT" >/dev/null
    fi
else
    echo "exporter: $MODEL_NAME with pretrained weights from the GluonCV model zoo"
    chosen=$("$PYTHON" -m ssd_serving.export --ensure --model "$MODEL_NAME" --out /export/zoo --fallback /export/demo)
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
if [ "${PRECISION:-fp32}" = int8 ]; then
    # quantize whatever was chosen above (zoo, your weights, or the demo model)
    case "${CALIBRATION_IMAGES:-builtin}" in
        builtin) calibration=builtin ;;
        *)
            calibration="/export/weights/$CALIBRATION_IMAGES"
            [ -d "$calibration" ] || {
                echo "ERROR: CALIBRATION_IMAGES=$CALIBRATION_IMAGES: no such folder in weights/ of the build context" >&2
                exit 1
            }
            ;;
    esac
    echo "exporter: quantizing to int8, calibration images: $CALIBRATION_IMAGES"
    "$PYTHON" -m ssd_serving.export --quantize int8 --from-export "$OUT" --out /export/model-int8 \
        --calibration-images "$calibration" >/dev/null
    rm -rf "$OUT"
    mv /export/model-int8 "$OUT"
fi
"$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); print("exporter: baking %s (demo: %s, weights: %s, precision: %s)" % (m["model_name"], m.get("demo", False), m["weights"].get("source"), m.get("precision", "fp32")))' "$OUT/model-meta.json"
