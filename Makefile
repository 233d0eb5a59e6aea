# `make run` and `make test` work on a fresh Debian machine with Python 3.11:
# every target installs what it needs (a virtualenv, the pinned buf from npm).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BUF    := tools/buf/node_modules/.bin/buf
STAMP  := $(VENV)/.installed

export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test lint gen check-gen contract bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(BUF): tools/buf/package.json tools/buf/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	# npm install, not npm ci: npm 11 leaves other platforms' optional buf binaries
	# out of the lock file and then refuses it in ci mode. The lock still pins buf.
	cd tools/buf && npm install --no-audit --no-fund --loglevel=error
	touch $@

## The service on :8080 (client), :8081 (internal), :9090 (health, metrics):
## memory store, dev-mode auth. Never use dev mode in production.
run: install
	NOTIFY_AUTH_DEV_MODE=true NOTIFY_STORE_DRIVER=memory $(BIN)/notifyd

## Regenerate gen/ from proto/ (messages, type stubs, grpcio and connect stubs).
gen: install $(BUF)
	$(BUF) generate

check-gen: install $(BUF)
	tools/check-gen

contract: $(BUF)
	tools/check-contract

lint: install
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

## The whole suite: style, types, the contract, generated code, every test.
test: install lint contract check-gen
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tools/buf/node_modules .mypy_cache .ruff_cache .pytest_cache
