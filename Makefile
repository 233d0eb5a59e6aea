# `make run` and `make test` work on a fresh Debian machine with Python 3.11:
# every target installs what it needs (a virtualenv, the pinned buf from npm).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BUF    := tools/buf/node_modules/.bin/buf
STAMP  := $(VENV)/.installed
WEB    := examples/web-inbox
WEB_STAMP := $(WEB)/node_modules/.installed
CLIENT := clients/web
CLIENT_STAMP := $(CLIENT)/node_modules/.installed
# Where `make run` lets the web inbox call the client port from (CORS).
WEB_ORIGINS := http://localhost:5173,http://127.0.0.1:5173

export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test lint gen check-gen contract bench clean web web-test fuzz

install: $(STAMP)

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e 'sdk/python[cli]'
	touch $@

$(BUF): tools/buf/package.json tools/buf/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	# npm install, not npm ci: npm 11 leaves other platforms' optional buf binaries
	# out of the lock file and then refuses it in ci mode. The lock still pins buf;
	# --no-save installs from it without rewriting it, so the tree stays clean.
	cd tools/buf && npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

## The service on :8080 (client), :8081 (internal), :9090 (health, metrics):
## memory store, dev-mode auth. Never use dev mode in production.
run: install
	@echo "web inbox: make web, then python3 -m http.server -d $(WEB)/dist 5173" \
	  "and open http://localhost:5173/?api=http://localhost:8080&user=user-alice&tenant=acme"
	NOTIFY_AUTH_DEV_MODE=true NOTIFY_STORE_DRIVER=memory \
	  NOTIFY_ALLOWED_ORIGINS="$${NOTIFY_ALLOWED_ORIGINS:-$(WEB_ORIGINS)}" $(BIN)/notifyd

## The browser client (clients/web, @notify/web: TypeScript generated from proto/
## by `make gen`, built with tsc into clients/web/dist/), then the browser inbox
## on it (examples/web-inbox), type-checked and bundled with esbuild into
## examples/web-inbox/dist/.
web: $(CLIENT_STAMP) $(WEB_STAMP)
	cd $(CLIENT) && node_modules/.bin/tsc -p tsconfig.build.json
	cd $(WEB) && node_modules/.bin/tsc --noEmit && node build.mjs

## The browser client's unit tests (vitest): the reducer, the live stream, the hooks.
web-test: $(CLIENT_STAMP)
	cd $(CLIENT) && node_modules/.bin/tsc --noEmit && node_modules/.bin/vitest run

$(CLIENT_STAMP): $(CLIENT)/package.json $(CLIENT)/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd $(CLIENT) && npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json $(CLIENT_STAMP)
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd $(WEB) && npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

## Regenerate gen/ from proto/ (messages, type stubs, grpcio and connect stubs),
## the SDK's copy of the contract (sdk/python/src/notify_client/_gen/), the
## browser client's TypeScript (clients/web/src/gen/, protoc-gen-es) and the
## generated docs: docs/api.md (the proto's comments) and docs/configuration.md
## (notify.config.VARIABLES).
gen: install $(BUF) $(CLIENT_STAMP)
	tools/gen

check-gen: install $(BUF) $(CLIENT_STAMP)
	tools/check-gen

contract: $(BUF)
	tools/check-contract

lint: install
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy
	cd sdk/python && ../../$(BIN)/mypy

## The whole suite: style, types, the contract, generated code, every test.
test: install lint contract check-gen
	$(BIN)/pytest

## The long fuzz run: 20,000 generated requests per RPC (the suite runs 2,000).
fuzz: install
	NOTIFY_FUZZ_EXAMPLES=$${NOTIFY_FUZZ_EXAMPLES:-20000} $(BIN)/pytest tests/e2e/test_fuzz.py -q --timeout=3600

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tools/buf/node_modules $(WEB)/node_modules $(WEB)/dist \
	  $(CLIENT)/node_modules $(CLIENT)/dist .mypy_cache .ruff_cache .pytest_cache
