# clipflow: `make demo` runs the pipeline against the local emulator, `make test` runs the suite.
# uv is bootstrapped into .tools/ when it is not on PATH; everything else installs from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: install demo test test-fast bench lint clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	touch $@

install: .venv/.synced

demo: install
	$(UV) run clipflow demo $(ARGS)

test: install
	$(UV) run pytest $(PYTEST_ARGS)

test-fast: install
	$(UV) run pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(UV) run python -m bench

clean:
	rm -rf .venv .tools .pytest_cache
