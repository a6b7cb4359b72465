# Everything runs inside .venv; a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: dev lint test demo bench corpus clean

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

corpus: $(STAMP)  ## regenerate the tamper corpus (CI checks it does not drift)
	$(BIN)/python -m tests.corpus.generate

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
