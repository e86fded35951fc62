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
DEPLOY := $(VENV_DIR)/deploy
DEMO_MODEL := container/models/demo
LOCAL_MODELS := build/models

.PHONY: serve test test-unit test-mx19 test-mx14 test-container image lint-py36 test-sdk-local venvs deploy-env demo-model demo-eval demo-eval-int8 bench bench-hops bench-compare bench-hosting bench-multimodel soak soak-container export docs docs-results clean

# Each venv gets this project installed in editable mode (pyproject.toml): ssd_serving and ssd_tools
# import from the working tree, with no PYTHONPATH.
PROJECT := pyproject.toml setup.cfg container/ssd_serving/__init__.py container/ssd_tools/__init__.py

$(MX19)/.installed: requirements/common.txt requirements/mxnet-1.9.txt $(PROJECT)
	@echo "==> creating the MXNet 1.9.1 environment in $(MX19)"
	$(PYTHON) -m venv $(MX19)
	$(MX19)/bin/pip install -q -r requirements/common.txt
	$(MX19)/bin/pip install -q --no-deps -r requirements/mxnet-1.9.txt
	$(MX19)/bin/pip install -q --no-deps -e .
	touch $@

$(MX14)/.installed: requirements/common.txt requirements/mxnet-1.4.txt $(PROJECT)
	@echo "==> creating the MXNet 1.4.1 (EI image stack) environment in $(MX14)"
	$(PYTHON) -m venv $(MX14)
	$(MX14)/bin/pip install -q -r requirements/common.txt
	$(MX14)/bin/pip install -q --no-deps -r requirements/mxnet-1.4.txt
	$(MX14)/bin/pip install -q --no-deps -e .
	touch $@

# The build host's tools for ./build_and_push.sh (boto3, AWS CLI); the script creates it when missing.
$(DEPLOY)/.installed: requirements/deploy.txt $(PROJECT)
	@echo "==> creating the build-host tools environment (boto3, AWS CLI) in $(DEPLOY)"
	$(PYTHON) -m venv $(DEPLOY)
	$(DEPLOY)/bin/pip install -q -r requirements/deploy.txt
	$(DEPLOY)/bin/pip install -q --no-deps -e .
	touch $@

# moto's servers and the deploy tools in the test venv; the pins of the MXNet stack must not move.
$(MX19)/.deploy-tests-installed: $(MX19)/.installed requirements/deploy.txt requirements/deploy-test.txt
	@echo "==> adding the deploy tests' tools (moto server, boto3, AWS CLI) to $(MX19)"
	$(MX19)/bin/pip install -q -r requirements/deploy-test.txt -c requirements/common.txt -c requirements/mxnet-1.9.txt
	touch $@

# The browser test of the try-it page (tests/test_page.py): Selenium in the test venv, Debian's chromium and
# chromedriver on the machine (tests/ensure-browser.sh, as root; without them the test skips and says why).
# (after the deploy tests' tools: two pip runs must not install into one venv at once, as under make -j)
$(MX19)/.browser-test-installed: $(MX19)/.installed requirements/browser-test.txt tests/ensure-browser.sh \
    | $(MX19)/.deploy-tests-installed
	@echo "==> adding the browser test's tools (Selenium; Debian's chromium and chromium-driver) to $(MX19)"
	tests/ensure-browser.sh
	$(MX19)/bin/pip install -q -r requirements/browser-test.txt -c requirements/common.txt -c requirements/mxnet-1.9.txt
	touch $@

# Debian's docker-registry binary for the push tests, unpacked from its .deb into build/tools (no
# service is installed or started); where apt-get cannot fetch it the push tests skip and say why.
DOCKER_REGISTRY_VERSION ?= 2.8.2+ds1-1
REGISTRY_DIR := build/tools/docker-registry
# (after the browser's apt-get install: apt takes a lock, so the two must not run at once, as under make -j)
$(REGISTRY_DIR)/usr/bin/docker-registry: | $(MX19)/.browser-test-installed
	@echo "==> fetching Debian's docker-registry $(DOCKER_REGISTRY_VERSION) for the push tests into $(REGISTRY_DIR)"
	@mkdir -p build/tools
	@cd build/tools && { apt-get download -q "docker-registry=$(DOCKER_REGISTRY_VERSION)" \
	    || { [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && apt-get download -q "docker-registry=$(DOCKER_REGISTRY_VERSION)"; }; } \
	    && dpkg-deb -x docker-registry_*.deb docker-registry && rm -f docker-registry_*.deb \
	    || echo "==> could not fetch docker-registry (is this Debian with apt?): the push tests will skip"

venvs: $(MX19)/.installed $(MX14)/.installed

deploy-env: $(DEPLOY)/.installed

## serve: serve the detector on PORT (default 8080): zoo weights when they can be downloaded, else the demo model
serve: $(MX19)/.installed
	@echo "==> choosing the model to serve"
	model_dir=$$($(MX19)/bin/python -m ssd_tools.export --ensure --model $(MODEL_NAME) \
	    --out $(LOCAL_MODELS)/$(MODEL_NAME) --fallback $(DEMO_MODEL)); \
	echo "==> serving $$model_dir on port $(PORT)"; \
	echo "==> open http://localhost:$(PORT)/ to try it in a browser (SSD_WEB_PAGE=1)"; \
	SSD_MODEL_DIR=$$model_dir SAGEMAKER_BIND_TO_PORT=$(PORT) SSD_WEB_PAGE=$${SSD_WEB_PAGE:-1} \
	    exec $(MX19)/bin/python -m ssd_serving.serving serve

# --- stock toolkit venvs (issue 10) -------------------------------------------------------------------
# code/inference.py must work unchanged in AWS's stock MXNet images whatever toolkit pair they carry. One
# small venv per pair (requirements/toolkits/PAIR.txt), layered on a base venv: its own site-packages
# holds only the pair (pip --no-deps --target) and a .pth that adds the base's site-packages after it,
# so MXNet, MMS and pytest come from the base and the pair wins. MMS's launchers are copied into the
# venv's bin with its python in the shebang: MMS starts its workers with the launcher's interpreter.
# test-toolkits runs tests/test_stock_toolkit.py once per pair, each in its own pytest: the toolkit's
# serve refuses to start while any other MMS runs (the test then fails and names its pid).
TOOLKIT_PAIRS := ei mid aws19 newest
TOOLKIT_BASE_ei := $(MX14)
TOOLKIT_BASE_mid := $(MX19)
TOOLKIT_BASE_aws19 := $(MX19)
TOOLKIT_BASE_newest := $(MX19)
TOOLKIT_VENVS := $(foreach pair,$(TOOLKIT_PAIRS),$(VENV_DIR)/toolkit-$(pair)/.installed)
.PHONY: toolkit-venvs test-toolkits

$(VENV_DIR)/toolkit-ei/.installed: $(MX14)/.installed
# sagemaker-inference 1.10 imports boto3, which the base has from the deploy tests' tools
$(VENV_DIR)/toolkit-mid/.installed $(VENV_DIR)/toolkit-aws19/.installed $(VENV_DIR)/toolkit-newest/.installed: \
    $(MX19)/.installed $(MX19)/.deploy-tests-installed

$(VENV_DIR)/toolkit-%/.installed: requirements/toolkits/%.txt
	@echo "==> stock toolkit pair '$*' in $(@D), layered on $(TOOLKIT_BASE_$*)"
	rm -rf $(@D)
	$(TOOLKIT_BASE_$*)/bin/python -m venv --without-pip $(@D)
	purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'; \
	site=$$($(@D)/bin/python -c "$$purelib"); base=$$($(TOOLKIT_BASE_$*)/bin/python -c "$$purelib"); \
	$(TOOLKIT_BASE_$*)/bin/pip install -q --no-deps --target "$$site" -r $<; \
	echo "import site; site.addsitedir('$$base')" > "$$site/zz-base-venv.pth"
	for tool in multi-model-server mxnet-model-server model-archiver; do \
	    if [ -f $(TOOLKIT_BASE_$*)/bin/$$tool ]; then \
	        sed '1s|^#!.*|#!$(abspath $(@D))/bin/python|' $(TOOLKIT_BASE_$*)/bin/$$tool > $(@D)/bin/$$tool; \
	        chmod +x $(@D)/bin/$$tool; \
	    fi; \
	done
	touch $@

toolkit-venvs: $(TOOLKIT_VENVS)

## test-toolkits: code/inference.py in the stock toolkit's own serve, once per pair (TOOLKIT_PAIRS)
test-toolkits: $(TOOLKIT_VENVS)
	@failed=""; for pair in $(TOOLKIT_PAIRS); do \
	    echo "==> code/inference.py in the stock toolkit's serve: pair $$pair ($$(grep -v '^#' requirements/toolkits/$$pair.txt | xargs))"; \
	    SSD_STOCK_TOOLKIT_PAIR=$$pair $(VENV_DIR)/toolkit-$$pair/bin/python -m pytest tests/test_stock_toolkit.py $(PYTEST_ARGS) \
	        || failed="$$failed $$pair"; \
	done; \
	if [ -n "$$failed" ]; then echo "==> stock toolkit pairs failed:$$failed"; exit 1; fi
# --- end of stock toolkit venvs (issue 10) ------------------------------------------------------------

# --- the SageMaker Python SDK's local mode (issue 11) ----------------------------------------------------------
# tests/test_sdk_local.py drives the built cpu image with the SDK's local mode (docker-compose), in a venv of its
# own (the SDK's numpy and pandas do not fit the MXNet pins); the photos come out of the mx19 venv's wheels.
SDK := $(VENV_DIR)/sdk
SDK_IMAGE ?= ssd-serving-test:cpu
SDK_PHOTOS := build/sdk-local/photos

$(SDK)/.installed: requirements/sdk-local.txt
	@echo "==> creating the SageMaker Python SDK 2.x (local mode) environment in $(SDK)"
	$(PYTHON) -m venv $(SDK)
	$(SDK)/bin/pip install -q -r requirements/sdk-local.txt
	touch $@

## test-sdk-local: the built cpu image deployed and run as a Batch Transform by the SageMaker SDK's local mode
test-sdk-local: $(SDK)/.installed $(MX19)/.installed
	@echo "==> the SageMaker SDK's local mode: deploy, predict and transform with $(SDK_IMAGE)"
	@if docker version >/dev/null 2>&1; then IMAGE=$(SDK_IMAGE) docker/build.sh cpu; \
	    else echo "==> no Docker engine: test_sdk_local.py skips (docker/ensure-engine.sh starts one)"; fi
	@rm -rf $(SDK_PHOTOS) && mkdir -p $(SDK_PHOTOS)
	$(MX19)/bin/python -c 'import shutil, sys; from ssd_tools.quantize import builtin_photos; \
	    [shutil.copy(path, sys.argv[1]) for _, path in builtin_photos()]' $(SDK_PHOTOS)
	SSD_SDK_IMAGE=$(SDK_IMAGE) SSD_SDK_PHOTOS=$(abspath $(SDK_PHOTOS)) $(SDK)/bin/python -m pytest \
	    tests/test_sdk_local.py --noconftest -p no:cacheprovider $(PYTEST_ARGS)
# --- end of the SDK's local mode --------------------------------------------------------------------------

# Everything the tiers need (venvs, the browser, the registry binary); `make test` makes them side by side (make -j):
# pip and apt wait on the network as much as on the CPU. The order-only prerequisites above keep two pip runs out
# of one venv and two apt runs apart.
TEST_SETUP := $(MX19)/.installed $(MX14)/.installed $(DEPLOY)/.installed $(MX19)/.deploy-tests-installed \
    $(MX19)/.browser-test-installed $(REGISTRY_DIR)/usr/bin/docker-registry $(TOOLKIT_VENVS) $(SDK)/.installed
.PHONY: test-setup test-lane-images test-lane-servers
test-setup: $(TEST_SETUP)

## test: every tier on both MXNet stacks (docs/tests.md): the set-up made side by side, the Python 3.6 floor of what
## runs in the image, then two lanes at once (the images: container and deploy tiers, then the MXNet 1.4.1 run; the
## servers: MXNet 1.9.1's unit, server and browser tiers, then the SDK's local mode), then the stock toolkit pairs alone
# Why lanes: on 2 vCPUs the suite used about a third of the CPU, its tests mostly waiting for JVMs, workers,
# containers and timeouts; each lane's tests start their own servers and containers on free ports. The toolkit
# pairs run alone afterwards: the stock toolkit's serve refuses to start while any other MMS runs.
test:
	@echo "==> set-up: every environment the tiers need, side by side (make -j4 test-setup)"
	@$(MAKE) --no-print-directory -j4 test-setup
	@$(MAKE) --no-print-directory lint-py36
	@echo "==> two lanes side by side, each line prefixed with its lane (whole logs: build/test-lane-*.log)"
	@mkdir -p build && rm -f build/test-lane-*.status
	@for lane in images servers; do \
	    { $(MAKE) --no-print-directory test-lane-$$lane 2>&1; echo $$? > build/test-lane-$$lane.status; } \
	        | tee build/test-lane-$$lane.log | sed -u "s/^/[$$lane] /" & \
	done; wait
	@failed=""; for lane in images servers; do \
	    [ "$$(cat build/test-lane-$$lane.status 2>/dev/null)" = 0 ] || failed="$$failed $$lane"; \
	done; \
	toolkits=0; $(MAKE) --no-print-directory test-toolkits || toolkits=1; \
	for lane in images servers; do echo "==> lane $$lane:"; grep -E "^(=+ .*(passed|failed|error).* =+|FAILED|ERROR|==> .*failed)" build/test-lane-$$lane.log || true; done; \
	if [ -n "$$failed" ] || [ $$toolkits != 0 ]; then \
	    echo "==> make test failed:$$failed$$( [ $$toolkits = 0 ] || echo ' toolkits') (the lanes' whole logs: build/test-lane-*.log)"; exit 1; fi; \
	echo "==> make test: every tier passed"

# the images lane: the container and deploy tiers (MXNet 1.9.1 venv), then the MXNet 1.4.1 run; every step runs, and
# the lane fails if any did. (Measured on 2 vCPUs: container and deploy about 13 min, MXNet 1.4.1 about 5; the servers
# lane's MXNet 1.9.1 run about 13.5 and the SDK's local mode 2.5: so the two lanes end close together.)
test-lane-images: $(MX19)/.installed $(MX19)/.deploy-tests-installed $(DEPLOY)/.installed $(REGISTRY_DIR)/usr/bin/docker-registry \
    $(MX14)/.installed
	@status=0; \
	echo "==> the container and deploy tiers (MXNet 1.9.1 venv): the images built and run, ./build_and_push.sh"; \
	$(MX19)/bin/python -m pytest tests -m "container or deploy" $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory test-mx14 || status=1; \
	exit $$status

# the servers lane: MXNet 1.9.1's unit, server and browser tiers, then the SDK's local mode (its image is docker/build.sh's
# cpu image, which the images lane built: the build is the cache's)
test-lane-servers: $(MX19)/.installed $(MX19)/.deploy-tests-installed $(MX19)/.browser-test-installed $(SDK)/.installed
	@status=0; \
	echo "==> the unit, server and browser tiers on MXNet 1.9.1 + GluonCV 0.10.5.post0"; \
	$(MX19)/bin/python -m pytest tests -m "not container and not deploy" $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory test-sdk-local || status=1; \
	exit $$status

lint-py36: $(MX19)/.installed
	@echo "==> checking that image code parses on Python 3.6 (vermin)"
	$(MX19)/bin/vermin --no-tips --violations -t=3.6- container/ssd_serving container/ssd_tools code docker

# The container tests (tests/test_container.py: the Dockerfile built on both stand-in bases) and the
# ./build_and_push.sh tests (tests/deploy) run in the MXNet 1.9.1 run only: they test the images and
# the build host's tooling, not this machine's MXNet, so once is enough. Without a Docker engine they
# skip and say why (SSD_REQUIRE_DOCKER=1, as in CI, makes that a failure).
test-mx19: $(MX19)/.installed $(MX19)/.deploy-tests-installed $(MX19)/.browser-test-installed $(DEPLOY)/.installed \
    $(REGISTRY_DIR)/usr/bin/docker-registry
	@echo "==> tests on MXNet 1.9.1 + GluonCV 0.10.5.post0, the container tests and ./build_and_push.sh (tests/deploy)"
	$(MX19)/bin/python -m pytest tests $(PYTEST_ARGS)

# The MXNet 1.4.1 run keeps what can differ on the EI image's stack and leaves out the tests marked any_stack
# (tests/tiers.py says which and why: the same code, interpreter and pins as in the MXNet 1.9.1 run).
test-mx14: $(MX14)/.installed
	@echo "==> tests on MXNet 1.4.1 + GluonCV 0.5.0 (what can differ there: -m 'not any_stack', tests/tiers.py)"
	$(MX14)/bin/python -m pytest tests --ignore=tests/test_container.py --ignore=tests/deploy -m "not any_stack" $(PYTEST_ARGS)

## test-unit: the unit tier on both stacks (no server, no Docker, no network; tests/tiers.py), for the inner loop
test-unit: $(MX19)/.installed $(MX14)/.installed
	@echo "==> the unit tier on MXNet 1.9.1 and MXNet 1.4.1 side by side (build/test-unit-mx*.log)"
	@mkdir -p build
	SSD_TEST_TIER=unit $(MX19)/bin/python -m pytest tests -m unit -q -p no:cacheprovider $(PYTEST_ARGS) \
	    > build/test-unit-mx19.log 2>&1 & mx19=$$!; \
	SSD_TEST_TIER=unit $(MX14)/bin/python -m pytest tests -m "unit and not any_stack" -q -p no:cacheprovider --ignore=tests/test_container.py \
	    --ignore=tests/deploy $(PYTEST_ARGS) > build/test-unit-mx14.log 2>&1 & mx14=$$!; \
	status=0; wait $$mx19 || status=1; wait $$mx14 || status=1; \
	echo "==> MXNet 1.9.1:"; tail -n 15 build/test-unit-mx19.log; echo "==> MXNet 1.4.1:"; tail -n 15 build/test-unit-mx14.log; \
	exit $$status

## test-container: only the container tests (needs a Docker engine: docker/ensure-engine.sh)
test-container: $(MX19)/.installed
	@echo "==> container tests: the Dockerfile on the cpu and ei stand-in bases"
	$(MX19)/bin/python -m pytest tests/test_container.py $(PYTEST_ARGS)

## soak: load and soak the real server (python -m ssd_tools.soak): SOAK_SECONDS (default 600) at SOAK_CONCURRENCY (default 8)
SOAK_SECONDS ?= 600
SOAK_CONCURRENCY ?= 8
soak: $(MX19)/.installed
	@echo "==> soak: $(SOAK_SECONDS) s at concurrency $(SOAK_CONCURRENCY) against the real server (demo model)"
	@mkdir -p build
	$(MX19)/bin/python -m ssd_tools.soak --seconds $(SOAK_SECONDS) --concurrency $(SOAK_CONCURRENCY) --json build/soak-report.json

## soak-container: the soak against the cpu image (built first) in a container limited to SOAK_MEMORY (default 2g),
## SOAK_CONTAINER_SECONDS (default 1800) long; every process's RSS and the writable layer's disk use are checked
SOAK_MEMORY ?= 2g
SOAK_CONTAINER_SECONDS ?= 1800
soak-container: $(MX19)/.installed
	@echo "==> soak-container: building the cpu image, then $(SOAK_CONTAINER_SECONDS) s at concurrency $(SOAK_CONCURRENCY) under --memory $(SOAK_MEMORY)"
	docker/ensure-engine.sh
	IMAGE=ssd-serving:soak-cpu docker/build.sh cpu
	@mkdir -p build
	$(MX19)/bin/python -m ssd_tools.soak --image ssd-serving:soak-cpu --memory $(SOAK_MEMORY) \
		--seconds $(SOAK_CONTAINER_SECONDS) --concurrency $(SOAK_CONCURRENCY) --warmup 300 \
		--json build/soak-container-report.json --container-log build/soak-container.log

## image: build the serving image on a stand-in base (STACK=cpu, gpu or ei) or AWS's (STACK=aws-cpu|aws-gpu|aws-eia; 1.9.0 cpu/gpu)
image:
	docker/build.sh $(STACK)

## demo-model: retrain the demo detector from scratch (CPU, fixed seeds) and export it
demo-model: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_tools.demo.train --out $(DEMO_MODEL)

## demo-eval: VOC07 mAP of the demo detector on a held-out synthetic set
demo-eval: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_tools.demo.evaluate --model-dir $(DEMO_MODEL) --require 0.9

## demo-eval-int8: quantize the demo detector to int8 (builtin calibration) and report its mAP drop against fp32
demo-eval-int8: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_tools.export --quantize int8 --from-export $(DEMO_MODEL) --out $(LOCAL_MODELS)/demo-int8 >/dev/null
	$(MX19)/bin/python -m ssd_tools.demo.evaluate --model-dir $(LOCAL_MODELS)/demo-int8 --compare-to $(DEMO_MODEL) --max-drop 1.0

## bench: latency, throughput, memory and start-up of the server against its floor and the original approach,
## all measured in one run (one table; JSON in build/bench/latest.json). BENCH_ARGS=--quick for a smoke run.
# The cpu stack (MXNet 1.9.1) measures everything; the ei image's stack (MXNet 1.4.1) serves beside it.
bench: $(MX19)/.installed $(MX14)/.installed
	BENCH_EI_PYTHON=$(MX14)/bin/python $(MX19)/bin/python bench/bench.py $(BENCH_ARGS)

## bench-hops: where a request's time goes between the client and the worker, thread by thread, from the
## kernel's scheduler events (bench/hops.py; needs Linux perf and root; JSON in build/bench/hops.json)
bench-hops: $(MX19)/.installed
	$(MX19)/bin/python bench/hops.py $(BENCH_HOPS_ARGS)

## bench-compare: BASE=<commit> against this working tree, one model's requests alternated between the two, the
## ratio of their p50s from one run (bench/compare.py; COMPARE_ARGS="--model-dir DIR" for another model than the demo)
bench-compare: $(MX19)/.installed
	@test -n "$(BASE)" || { echo "make bench-compare needs BASE=<commit>, e.g. make bench-compare BASE=HEAD~1"; exit 2; }
	$(MX19)/bin/python bench/compare.py --base $(BASE) $(COMPARE_ARGS)

## bench-hosting: Batch Transform throughput and serverless cold start and memory of the cpu image
## (bench/hosting.py; JSON in build/bench/hosting.json)
HOSTING_IMAGE ?= ssd-serving-bench:cpu
bench-hosting: $(MX19)/.installed
	IMAGE=$(HOSTING_IMAGE) docker/build.sh cpu
	$(MX19)/bin/python bench/hosting.py --image $(HOSTING_IMAGE) $(BENCH_ARGS)

## bench-multimodel: a multi-model endpoint's load time and memory per model, on each MXNet stack
## (bench/multimodel.py; JSON in build/bench/multimodel.json)
bench-multimodel: $(MX19)/.installed $(MX14)/.installed
	$(MX19)/bin/python bench/multimodel.py $(BENCH_ARGS)
	$(MX14)/bin/python bench/multimodel.py $(BENCH_ARGS)

## docs: render the measured figures in README.md and docs/*.md from the results committed in docs/results
docs: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_tools.figures --render

## docs-results: take the last `make bench` (build/bench/latest.json), `make soak` (build/soak-report.json),
## `make bench-hosting` (build/bench/hosting.json), `make bench-hops` (build/bench/hops.json) and `python -m ssd_tools.demo.int8_study --floor --out
## build/int8-study.json` into docs/results, then render the docs; commit both together
docs-results: $(MX19)/.installed
	$(MX19)/bin/python -m ssd_tools.figures \
	    $$(test -f build/bench/latest.json && echo --take-bench build/bench/latest.json) \
	    $$(if test -f build/soak-container-report.json; then echo --take-soak build/soak-container-report.json; \
	       elif test -f build/soak-report.json; then echo --take-soak build/soak-report.json; fi) \
	    $$(test -f build/bench/hosting.json && echo --take-hosting build/bench/hosting.json) \
	    $$(test -f build/bench/multimodel.json && echo --take-multimodel build/bench/multimodel.json) \
	    $$(test -f build/bench/hops.json && echo --take-hops build/bench/hops.json) \
	    $$(test -f build/int8-study.json && echo --take-int8-study build/int8-study.json)

clean:
	rm -rf $(VENV_DIR) build
