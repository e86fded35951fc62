# The SSD object detector behind the SageMaker inference contract, on an AWS MXNet inference image.
#
#   docker/build.sh cpu|gpu|ei      on a local stand-in base (where ECR cannot be reached)
#   docker/build.sh aws-cpu|aws-gpu|aws-eia   on AWS's images (after `docker login` to their ECR registry)
#   docker run --rm -p 8080:8080 IMAGE serve
#
# Build arguments:
#   REGION, AWS_ACCOUNT, ECR_DOMAIN        where AWS's images are (account 763104351884 serves most regions)
#   BASE_REPOSITORY, BASE_TAG               which one: mxnet-inference:1.9.0-cpu-py38-ubuntu20.04-sagemaker (cpu),
#                                           mxnet-inference:1.9.0-gpu-py38-cu112-ubuntu20.04-sagemaker (gpu),
#                                           mxnet-inference-eia:1.4.1-cpu-py36-ubuntu16.04 (default, EI)
#   BASE_IMAGE                              or the whole image name (e.g. a stand-in from docker/base)
#   EXPORTER_IMAGE                          image that exports the model (default BASE_IMAGE; for the GPU image use
#                                           the CPU image of the same MXNet, since MXNet-CUDA needs a GPU driver)
#   MODEL_NAME                              GluonCV SSD to bake (default ssd_512_resnet50_v1_voc)
#   MODEL_PARAMS, MODEL_CLASSES             your own weights from weights/ in the build context, and their classes
#   REQUIRE_ZOO_WEIGHTS=1                   fail instead of baking the demo model when the zoo cannot be reached
#   WITH_INT8=1                             also bake the int8 quantization of the model (in its int8/ folder) for
#                                           the cpu target (MXNet >= 1.9 with oneDNN); the server then serves it
#                                           where the CPU has VNNI or AMX (SSD_PRECISION=auto). docker/build.sh
#                                           passes it for cpu and aws-cpu. int8 is baked only when it passes its
#                                           accuracy check against fp32 on held-out images (docs/int8.md); otherwise
#                                           the image serves fp32 and the build prints a banner saying so.
#   CALIBRATION_IMAGES                      with WITH_INT8=1: builtin (real photos from the matplotlib and
#                                           scikit-image wheels plus synthetic scenes) or a folder under weights/
#                                           (split by file name into calibration and check images)
#   CHECK_IMAGES                            with WITH_INT8=1: a folder under weights/ of held-out images to check
#                                           int8 on (VOC XML labels beside them: mAP drop; none: agreement with fp32)
#   REQUIRE_INT8=1                          fail the build when int8 does not pass its accuracy check
#   SERVING_USER                            user the server runs as (default model-server; root for bases that need it)
# Build secret `ca_bundle` (optional): a CA bundle for TLS-inspecting proxies, used by pip and the weight
# download during the build only; it is never stored in an image layer.
#
# Needs BuildKit (RUN --mount). No `# syntax=` line: the engine's built-in Dockerfile frontend is used.

ARG REGION=us-east-1
ARG AWS_ACCOUNT=763104351884
ARG ECR_DOMAIN=amazonaws.com
ARG BASE_REPOSITORY=mxnet-inference-eia
ARG BASE_TAG=1.4.1-cpu-py36-ubuntu16.04
ARG BASE_IMAGE=${AWS_ACCOUNT}.dkr.ecr.${REGION}.${ECR_DOMAIN}/${BASE_REPOSITORY}:${BASE_TAG}
ARG EXPORTER_IMAGE=${BASE_IMAGE}

# --- exporter: GluonCV (this stage only) exports the hybridized, fixed-shape SSD with the base's MXNet
FROM ${EXPORTER_IMAGE} AS exporter
USER root
COPY requirements/common.txt requirements/mxnet-1.4.txt requirements/mxnet-1.9.txt /export/pins/requirements/
COPY docker/pip_install_pinned.py /export/pins/
COPY docker/base/constraints.txt /export/pins/base/
COPY docker/exporter/ /export/pins/exporter/
ARG WITH_INT8=0
RUN --mount=type=secret,id=ca_bundle sh /export/pins/exporter/install.sh
COPY container/ssd_serving /export/src/ssd_serving
COPY container/ssd_tools /export/src/ssd_tools
COPY container/models/demo /export/demo
COPY weights/ /export/weights/
ARG MODEL_NAME=ssd_512_resnet50_v1_voc
ARG MODEL_PARAMS=
ARG MODEL_CLASSES=
ARG REQUIRE_ZOO_WEIGHTS=0
ARG CALIBRATION_IMAGES=builtin
ARG CHECK_IMAGES=
ARG REQUIRE_INT8=0
RUN --mount=type=secret,id=ca_bundle --mount=type=cache,id=ssd-gluoncv-models,target=/root/.mxnet/models \
    sh /export/pins/exporter/export.sh

# --- the served image: the base's MXNet and model server, the serving runtime (ssd_serving, not the tools),
# the baked model; no GluonCV
FROM ${BASE_IMAGE} AS serving
# multi-models: with SAGEMAKER_MULTI_MODEL=true the server answers SageMaker's /models API
# (ssd_serving/multimodel.py, docs/hosting.md)
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.amazonaws.sagemaker.capabilities.multi-models=true \
      org.opencontainers.image.title="GluonCV SSD object detection for Amazon SageMaker"
USER root
ENV SSD_MODEL_DIR=/opt/ssd/model \
    SSD_PRECISION=auto \
    SSD_CODE_DIR=/opt/ssd/code \
    PYTHONUNBUFFERED=1
COPY docker/serve-entrypoint.sh /usr/local/bin/ssd-entrypoint
COPY docker/check-image.sh /opt/ssd/check-image.sh
COPY code/inference.py /opt/ssd/code/inference.py
COPY container/ssd_serving /opt/ssd/ssd_serving
COPY --from=exporter /export/model /opt/ssd/model
ARG SERVING_USER=model-server
# the runtime goes where the base's Python keeps installed packages: no PYTHONPATH to keep right
RUN chmod 0755 /usr/local/bin/ssd-entrypoint \
 && (id -u "${SERVING_USER}" >/dev/null 2>&1 || useradd -m "${SERVING_USER}") \
 && PYTHON=$(command -v python || command -v python3) \
 && SITE=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && mv /opt/ssd/ssd_serving "$SITE/ssd_serving" && chmod -R a+rX "$SITE/ssd_serving" \
 && "$PYTHON" -m compileall -q "$SITE/ssd_serving" /opt/ssd/code \
 && sh /opt/ssd/check-image.sh
USER ${SERVING_USER}
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ssd-entrypoint"]
CMD ["serve"]
