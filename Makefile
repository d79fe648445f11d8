# clipflow: `make demo` runs the pipeline against the local emulator, `make test` runs the suite.
# uv is bootstrapped into .tools/ when it is not on PATH; everything else installs from uv.lock, with the `local`
# extra (moto for the emulated S3 of the demo, the local stack and the tests; a worker needs only the package).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
EXTRAS := --extra local

.PHONY: install demo up down test test-fast test-e2e e2e-deps bench lint clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode compiled at install: a process that cannot write __pycache__ (PYTHONDONTWRITEBYTECODE, a read-only
# tree) otherwise compiles every module it imports, each time (bench/vs_plain.py: 1.5 CPU-s of a flow run).
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode $(EXTRAS)
	touch $@

install: .venv/.synced

demo: install
	@.venv/bin/clipflow demo $(ARGS)

# A full local stack (Prefect server + UI, emulator, S3, worker, blocks, deployments); state in .clipflow/.
up: install
	@.venv/bin/clipflow up $(ARGS)

down:
	@if [ -x .venv/bin/clipflow ]; then .venv/bin/clipflow down $(ARGS); else echo "make down: nothing installed, nothing running"; fi

# The suite runs on pytest-xdist workers: most slow tests wait on emulated jobs, leases and servers, so four workers
# keep two cores busy (measured on 2 cores: 11:30 with four, 12:41 with three; five were faster, 10:16-11:26,
# but shook out more contention flakes than were fixed yet). Each e2e/chaos stack is one xdist group
# (tests/conftest.py). `make test TEST_WORKERS=0`: serial.
TEST_WORKERS ?= 4
PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

test: install e2e-deps
	$(UV) run $(EXTRAS) pytest $(PARALLEL) $(PYTEST_ARGS)

# tests/e2e only: a real Prefect server on PostgreSQL, process workers, the UI in headless Chromium.
test-e2e: install e2e-deps
	$(UV) run $(EXTRAS) pytest tests/e2e $(PARALLEL) $(PYTEST_ARGS)

# The end-to-end tests need Debian's PostgreSQL server and Chromium (and curl: the README's REST snippets). Installed
# when missing and we are root (CI); otherwise, or when apt-get fails, those tests skip and say why. Never
# `playwright install`: it downloads.
E2E_APT := postgresql chromium fonts-liberation curl
e2e-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v chromium curl >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "e2e-deps: apt-get install $(E2E_APT)"; \
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(E2E_APT) >/dev/null; } || echo "e2e-deps: install failed: e2e tests will skip"; \
	else echo "e2e-deps: PostgreSQL/Chromium missing (apt-get install $(E2E_APT) as root): e2e tests will skip"; fi

# The edit loop: no test that starts a server (tests/conftest.py marks those `slow`); a few minutes.
test-fast: install
	$(UV) run $(EXTRAS) pytest -m "not slow" $(PARALLEL) $(PYTEST_ARGS)

bench: install
	$(UV) run $(EXTRAS) python -m bench

clean:
	rm -rf .venv .tools .pytest_cache
