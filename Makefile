# Set-up and everyday commands. Each target installs what it needs on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
PORT ?= 8080
MODEL_NAME ?= ssd_512_resnet50_v1_voc
STACK ?= cpu
VENV_DIR ?= .venv
MX19 := $(VENV_DIR)/mx19
MX14 := $(VENV_DIR)/mx14
DEMO_MODEL := container/models/demo
LOCAL_MODELS := build/models
export PYTHONPATH := $(CURDIR)/container:$(CURDIR)/code

.PHONY: serve test test-mx19 test-mx14 test-container image lint-py36 venvs demo-model demo-eval export clean

$(MX19)/.installed: requirements/common.txt requirements/mxnet-1.9.txt
	@echo "==> creating the MXNet 1.9.1 environment in $(MX19)"
	$(PYTHON) -m venv $(MX19)
	$(MX19)/bin/pip install -q -r requirements/common.txt
	$(MX19)/bin/pip install -q --no-deps -r requirements/mxnet-1.9.txt
	touch $@

$(MX14)/.installed: requirements/common.txt requirements/mxnet-1.4.txt
	@echo "==> creating the MXNet 1.4.1 (EI image stack) environment in $(MX14)"
	$(PYTHON) -m venv $(MX14)
	$(MX14)/bin/pip install -q -r requirements/common.txt
	$(MX14)/bin/pip install -q --no-deps -r requirements/mxnet-1.4.txt
	touch $@

venvs: $(MX19)/.installed $(MX14)/.installed

## serve: serve the detector on PORT (default 8080): zoo weights when they can be downloaded, else the demo model
serve: $(MX19)/.installed
	@echo "==> choosing the model to serve"
	model_dir=$$($(MX19)/bin/python -m ssd_serving.export --ensure --model $(MODEL_NAME) \
	    --out $(LOCAL_MODELS)/$(MODEL_NAME) --fallback $(DEMO_MODEL)); \
	echo "==> serving $$model_dir on port $(PORT)"; \
	SSD_MODEL_DIR=$$model_dir SAGEMAKER_BIND_TO_PORT=$(PORT) exec $(MX19)/bin/python -m ssd_serving.serving serve

## test: the whole suite on both MXNet stacks, plus the Python 3.6 floor of what runs in the image
test: lint-py36 test-mx19 test-mx14

lint-py36: $(MX19)/.installed
	@echo "==> checking that image code parses on Python 3.6 (vermin)"
	$(MX19)/bin/vermin --no-tips --violations -t=3.6- container/ssd_serving code docker

# The container tests (tests/test_container.py: the Dockerfile built on both stand-in bases) run in
# the MXNet 1.9.1 run only: they test the images, not this machine's MXNet, so once is enough.
# Without a Docker engine they skip and say why (SSD_REQUIRE_DOCKER=1, as in CI, makes that a failure).
test-mx19: $(MX19)/.installed
	@echo "==> tests on MXNet 1.9.1 + GluonCV 0.10.5.post0, and the container tests"
	$(MX19)/bin/python -m pytest tests $(PYTEST_ARGS)

test-mx14: $(MX14)/.installed
	@echo "==> tests on MXNet 1.4.1 + GluonCV 0.5.0"
	$(MX14)/bin/python -m pytest tests --ignore=tests/test_container.py $(PYTEST_ARGS)

## test-container: only the container tests (needs a Docker engine: docker/ensure-engine.sh)
test-container: $(MX19)/.installed
	@echo "==> container tests: the Dockerfile on the cpu and ei stand-in bases"
	$(MX19)/bin/python -m pytest tests/test_container.py $(PYTEST_ARGS)

## image: build the serving image on a stand-in base (STACK=cpu or ei) or AWS's (STACK=aws-eia|aws-cpu|aws-gpu)
image:
	docker/build.sh $(STACK)

## demo-model: retrain the demo detector from scratch (CPU, fixed seeds) and export it
demo-model: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_serving.demo.train --out $(DEMO_MODEL)

## demo-eval: VOC07 mAP of the demo detector on a held-out synthetic set
demo-eval: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_serving.demo.evaluate --model-dir $(DEMO_MODEL) --require 0.9

clean:
	rm -rf $(VENV_DIR) build
