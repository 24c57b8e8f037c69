VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# The AsyncAPI parser the suite validates the AsyncAPI document with (tests/test_asyncapi.py).
ASYNCAPI_DIR := tests/asyncapi
ASYNCAPI_STAMP := $(ASYNCAPI_DIR)/node_modules/.installed

.PHONY: install browser asyncapi promtool dev test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# The harness's own pins (bench/requirements.txt): for `make bench`, and for mypy on bench/.
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

install: $(STAMP)

# Exactly the versions of package-lock.json, without install scripts; once, until the lock changes.
$(ASYNCAPI_STAMP): $(ASYNCAPI_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "The AsyncAPI check needs node (v20) and npm: install Debian's 'nodejs' and 'npm' packages, then run make test again." >&2; exit 2; }
	cd $(ASYNCAPI_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(ASYNCAPI_STAMP)

asyncapi: $(ASYNCAPI_STAMP)

dev: install
	$(VENV)/bin/parley dev $(ARGS)

# The browser tests drive the system's Chromium (Playwright never downloads one): Debian's
# `chromium`, installed here when it is missing and this machine can install it.
browser:
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests (once)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Chromium at /usr/bin/chromium: install Debian's 'chromium' package (sudo apt-get install chromium), then run make test again." >&2; \
		exit 2; \
	fi

# The alert rules and scrape configuration of infra/ are checked with promtool (Debian's
# `prometheus` package has it; its server is not started), installed here when it is missing.
promtool:
	@if command -v promtool >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's prometheus package for promtool (once)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else \
		echo "The infra/ checks need promtool: install Debian's 'prometheus' package (sudo apt-get install prometheus), then run make test again." >&2; \
		exit 2; \
	fi

test: install browser asyncapi promtool
	$(PY) -m pytest -q $(ARGS)

bench: $(BENCH_STAMP)
	$(PY) -m bench $(ARGS)

# mypy --strict covers bench/ too (pyproject.toml's [tool.mypy] packages).
lint: $(BENCH_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .parley build *.egg-info $(ASYNCAPI_DIR)/node_modules
