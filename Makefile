# Two commands do all the set-up from a clean clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit postgres-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/predator campaign --days 30 --chaos medium --seed 1 --out .demo/campaign

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: $(STAMP) postgres-check
	$(BIN)/pytest -q

# The postgres-marked tests run against a real server: without one, make test fails here
# with a clear message (never skips them). The tests read the same URL.
PREDATOR_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export PREDATOR_TEST_POSTGRES_URL

define POSTGRES_CHECK
import os, sys
import psycopg
url = os.environ["PREDATOR_TEST_POSTGRES_URL"]
try:
    psycopg.connect(url, connect_timeout=5).close()
except psycopg.Error as exc:
    sys.exit(
        f"make test: PostgreSQL is unreachable at {url}: {str(exc).strip()}\n"
        "The postgres tests need it; start the server (pg_ctlcluster --skip-systemctl-redirect "
        "$$(ls /etc/postgresql) main start) or set PREDATOR_TEST_POSTGRES_URL."
    )
endef
export POSTGRES_CHECK

postgres-check: $(STAMP)
	@$(BIN)/python -c "$$POSTGRES_CHECK"

test: lint unit

# Benchmarks run peers in their own environment (.bench-venv), never as project dependencies.
# Extra arguments: make bench BENCH_ARGS="--repeats 10 --json"
BENCH_ARGS ?=
bench:
	PYTHON=$(PYTHON) bash bench/setup_env.sh
	.bench-venv/bin/python bench/bars.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench-venv .demo .pytest_cache .mypy_cache .ruff_cache
