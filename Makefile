# `make test` must work on a fresh machine with only Python 3.11: it builds its own venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck bench clean proto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e . --group dev
	touch $(STAMP)

# The gRPC service on 127.0.0.1:50051, in-memory store, demo network; it prints how to call it.
run: $(STAMP)
	$(VENV)/bin/allocation-engine serve --demo --host 127.0.0.1 --port 50051 --http-port 8080

# Regenerates the typed protobuf code from proto/ (tests/service/test_proto_current.py checks it).
proto: $(STAMP)
	$(PY) scripts/gen_proto.py

check: lint typecheck

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: check
	$(PY) -m pytest

# Every benchmark family at full size: the report (Markdown, plots, JSON) lands in reports/bench/,
# then the pytest-benchmark suites (F1 to F5) add their statistics beside it.
bench: $(STAMP)
	$(VENV)/bin/allocation-engine bench --full --out reports/bench
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-json=reports/bench/pytest-benchmark.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks
