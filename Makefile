# One command each. `make serve` and `make test` work on a fresh machine with Python 3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dashboard's browser tests drive Debian's Chromium (never a browser that a test tool downloads).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# `make serve PORT=8080 HOST=0.0.0.0` when 8000 is taken or other machines should reach it.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve worker test check lint fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,scaled]'
	touch $(STAMP)

install: $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

serve: $(STAMP)
	$(BIN)/konvrt serve --host $(HOST) --port $(PORT)

worker: $(STAMP)
	$(BIN)/konvrt worker

test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -n 2 --dist loadfile

check: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

lint: check

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
