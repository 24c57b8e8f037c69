VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install dev test lint bench clean

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

dev: install
	$(VENV)/bin/parley dev $(ARGS)

test: install
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
	rm -rf $(VENV) .parley build *.egg-info
