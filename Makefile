# Doorstep: `make demo` sets up and serves the platform; `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export UV_PYTHON_DOWNLOADS := never
VENDOR_STAMP := src/doorstep/web/static/vendor/.stamp

.PHONY: demo test setup lint typecheck test-embedded test-production e2e bench clean

demo: setup
	$(PY) -m compileall -q src > /dev/null
	$(VENV)/bin/doorstep demo

setup: $(VENV)/.stamp $(VENDOR_STAMP)

# Bytecode is compiled at install (and for src/ before each run): with PYTHONDONTWRITEBYTECODE
# set, as on the CI machines, Python would otherwise compile every module again in every process,
# about 14 s for each server the tests start (docs/decisions.md).
$(VENV)/.stamp: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
	$$(command -v uv || echo $(UV)) sync --frozen --python python3.11 --compile-bytecode
	touch $@

$(VENDOR_STAMP): package.json package-lock.json scripts/vendor.py
	npm ci --no-audit --no-fund --loglevel=error
	$(PY) scripts/vendor.py
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

test-embedded: setup
	$(VENV)/bin/pytest

test-production: setup
	$(PY) scripts/test_production.py

# Both passes at once (scripts/test_both.py): they mostly wait on browsers and sockets.
test: lint typecheck
	$(PY) -m compileall -q src > /dev/null
	$(PY) scripts/test_both.py

bench: setup
	$(PY) bench/api_baseline.py

clean:
	rm -rf $(VENV) node_modules src/doorstep/web/static/vendor artifacts
