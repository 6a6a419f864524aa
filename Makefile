# Two commands: `make run` and `make test` (`make test-fast` for the quick loop). All build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck pytest histories clean system-deps bench chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tocsin up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy tocsin workflows activities worker tests bench

# The intake tests run the real Prometheus and Alertmanager from Debian's packages; the report's test views its
# HTML in Debian's headless Chromium (tests/integration/test_report_browser.py).
system-deps:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
	  && command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager chromium; \
	  else echo "make: install Debian's prometheus, prometheus-alertmanager and chromium packages first" >&2; exit 1; fi; }

# Two processes: most tests wait on a Temporal server, so two halve the wall time on a 2-core machine.
pytest: $(STAMP) system-deps
	$(BIN)/pytest -q -n 2

test: lint typecheck pytest

# The quick loop, without lint and types: the unit and workflow tiers, which need no dev server, no Prometheus
# and no server in a subprocess (docs/testing.md). About 75 s.
test-fast: $(STAMP)
	$(BIN)/pytest -q -n 2 tests/unit tests/workflows

# Re-record the golden histories replayed by tests/replay/test_replay.py (run after a deliberate, patched change).
histories: $(STAMP)
	$(BIN)/python -m tests.replay.record_histories

# Not a test: intake throughput (Python and wrk load generators), an alert storm, first-page latency, worker
# memory and re-warm; prints the figures and writes bench/results.md. About 12 minutes; never fails the build.
# `.venv/bin/python -m bench --help` for shorter runs. wrk (Debian package `wrk`) is installed when this runs
# as root with apt-get; anywhere else it is optional: without it that phase is skipped.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1; } || true
	$(BIN)/python -m bench

# Kills real processes mid-incident and counts what the vendors saw (see docs/testing.md, "Chaos"); about 7 minutes.
# `make test` runs only its quick cases.
chaos: $(STAMP) system-deps
	TOCSIN_CHAOS=1 $(BIN)/pytest -q -m chaos tests/integration/chaos

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
