# One command to set up and test, one to set up and run: both on a fresh clone.
PYTHON ?= python3
# `make run HOST=127.0.0.1 PORT=9000` to serve elsewhere.
HOST ?= 0.0.0.0
PORT ?= 8080
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup models test run lint clean

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
	$(BIN)/facecompare serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV)
