# One command to set up and test, one to set up and run: both on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup models test run lint clean check-kernels

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
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
	$(BIN)/facecompare serve --host 0.0.0.0 --port 8080

lint: setup
	$(BIN)/ruff check .

# Every CUDA kernel through NVRTC 12.6 for sm_53, sm_62, sm_72 and sm_87; no GPU needed.
check-kernels: setup
	$(BIN)/python -m engine.cuda.check

clean:
	rm -rf $(VENV)
