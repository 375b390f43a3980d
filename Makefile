# One command to set up and test, one to set up and run: both on a fresh clone.
PYTHON ?= python3
# `make run HOST=127.0.0.1 PORT=9000` to serve elsewhere.
HOST ?= 0.0.0.0
PORT ?= 8080
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup models test run lint clean check-kernels gpu-check lint-docker docker-cpu docker-jetson docker-x86-gpu

# On a Jetson: make setup VENV_FLAGS=--system-site-packages (JetPack's TensorRT is an apt package).
VENV_FLAGS ?=

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

models: setup
	$(BIN)/facecompare models fetch

test: models
	$(BIN)/ruff check .
	$(BIN)/python -m tests.assets fetch
	$(BIN)/python -m pytest

run: models
	$(BIN)/facecompare serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .

# Dockerfiles through hadolint (from the test extra's wheel).
lint-docker: setup
	$(BIN)/hadolint --config docker/.hadolint.yaml docker/Dockerfile.cpu docker/Dockerfile.jetson docker/Dockerfile.x86-gpu

# Images; a docker engine is needed (none on the development machines). The Jetson image builds on the Jetson.
DOCKER ?= docker
docker-cpu:
	$(DOCKER) build -f docker/Dockerfile.cpu -t facecompare-edge:cpu .

docker-jetson:
	$(DOCKER) build -f docker/Dockerfile.jetson -t facecompare-edge:jetson .

docker-x86-gpu:
	$(DOCKER) build -f docker/Dockerfile.x86-gpu -t facecompare-edge:x86-gpu .

# Every CUDA kernel through NVRTC 12.6 for sm_53, sm_62, sm_72 and sm_87; no GPU needed.
check-kernels: setup
	$(BIN)/python -m engine.cuda.check

# The GPU path on this machine, one report (docs/JETSON.md); without a GPU every check says why it is skipped.
gpu-check: models
	$(BIN)/python -m tests.assets fetch
	$(BIN)/facecompare doctor --self-test --json

clean:
	rm -rf $(VENV)
