VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# The AsyncAPI parser the suite validates the AsyncAPI document with (tests/test_asyncapi.py).
ASYNCAPI_DIR := tests/asyncapi
ASYNCAPI_STAMP := $(ASYNCAPI_DIR)/node_modules/.installed

JS_DIR := clients/js
JS_STAMP := $(JS_DIR)/node_modules/.installed

.PHONY: install browser asyncapi promtool kubeconform floorclient js dev test lint bench clean

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

# The Kubernetes manifests of infra/k8s/ are checked with kubeconform (tests/test_infra.py),
# built from the Go module proxy at a pinned version into the virtualenv; its schemas are the
# ones vendored in infra/k8s/schemas/, so the check needs no network.
KUBECONFORM_VERSION := v0.6.7
KUBECONFORM_STAMP := $(VENV)/.kubeconform-$(KUBECONFORM_VERSION)

$(KUBECONFORM_STAMP): | $(STAMP)
	@command -v go >/dev/null 2>&1 || { echo "The infra/ checks build kubeconform with Go: install Go 1.22 or newer (https://go.dev/dl), then run make test again." >&2; exit 2; }
	GOBIN=$(abspath $(VENV)/bin) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	touch $(KUBECONFORM_STAMP)

kubeconform: $(KUBECONFORM_STAMP)

# The JavaScript client's tests run on Node.js 20.10+ (its global fetch, and WebSocket with
# --experimental-websocket); its TypeScript declarations are checked by the pinned `tsc` of
# clients/js/package-lock.json, its only (development) dependency.
$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)' 2>/dev/null || { \
		echo "The JavaScript client's tests need Node.js 20.10 or newer with npm: install them (https://nodejs.org, or your system's nodejs package), then run make test again." >&2; \
		exit 2; }
	cd $(JS_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

js: $(JS_STAMP)

test: install browser asyncapi promtool kubeconform floorclient js
	$(PY) -m pytest -q $(ARGS)

# The Kafka floors' native client (bench/floorclient: Go, franz-go from the Go module proxy, the
# versions of its go.sum), built into the virtualenv; rebuilt when its source changes.
FLOORCLIENT := $(VENV)/bin/floorclient
FLOORCLIENT_SRC := bench/floorclient/main.go bench/floorclient/go.mod bench/floorclient/go.sum

$(FLOORCLIENT): $(FLOORCLIENT_SRC) | $(STAMP)
	@command -v go >/dev/null 2>&1 || { echo "The bench's floor client is built with Go: install Go 1.26 or newer (https://go.dev/dl), or run the bench with ARGS='--floor-client python'." >&2; exit 2; }
	cd bench/floorclient && go build -trimpath -o $(abspath $(FLOORCLIENT)) .

floorclient: $(FLOORCLIENT)

bench: $(BENCH_STAMP) $(FLOORCLIENT)
	$(PY) -m bench $(ARGS)

# mypy --strict covers bench/ too (pyproject.toml's [tool.mypy] packages).
lint: $(BENCH_STAMP) $(JS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(JS_DIR)/node_modules/.bin/tsc --noEmit -p $(JS_DIR)
	@unformatted="$$(gofmt -l bench/floorclient)"; [ -z "$$unformatted" ] || { echo "gofmt would change: $$unformatted" >&2; exit 1; }
	cd bench/floorclient && go vet ./...

clean:
	rm -rf $(VENV) .parley build *.egg-info $(ASYNCAPI_DIR)/node_modules $(JS_DIR)/node_modules
