# The two commands of the README:
#   make demo   set up, then run the bundled sample offline on SQLite (no server, no network)
#   make test   set up, then lint, type-check and run the tests on SQLite and PostgreSQL
#   make test-fast  the fast tier while working: no server, process or PostgreSQL half
#   make bench  end to end first, then the parts (benchmarks/README.md); about 20 minutes
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE := examples/northwind/plan.yaml
SAMPLE_AS_OF := 2027-03-01T09:00Z

.PHONY: setup demo test test-fast lint types pytest bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/stratmap run $(SAMPLE) --db sqlite:///northwind.db --as-of $(SAMPLE_AS_OF) --json northwind-report.json

# lint-imports: the contracts in pyproject.toml ([tool.importlinter]), the design's arrows.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# mypy cannot follow the editable install's import hook: lay the `stratmap` namespace out as
# symlinks to the design card's folders, the same tree the wheel holds.
NAMESPACE := flows connectors models judgement publish deployments
types: setup
	@mkdir -p .typecheck/stratmap
	@for d in $(NAMESPACE); do ln -sfn ../../$$d .typecheck/stratmap/$$d; done
	$(BIN)/mypy

# Two pytest sessions side by side, so the whole suite fits CI's budget on two cores: the
# tests that mostly wait on servers they start (prefect server, the wheel's fresh venv,
# Prometheus) and everything else. Each session has its own PostgreSQL database
# (tests/conftest.py); the servers' report is printed after the rest, and the target fails
# if either session does.
SERVER_TESTS := tests/test_prefect_server.py tests/test_prefect_production.py \
	tests/test_wheel.py tests/test_prometheus.py
pytest: setup
	@$(BIN)/pytest -p no:cacheprovider $(SERVER_TESTS) > .pytest-servers.log 2>&1 & \
	servers=$$!; \
	$(BIN)/pytest $(addprefix --ignore=,$(SERVER_TESTS)); rest=$$?; \
	wait $$servers; served=$$?; \
	echo "== the server tests ($(SERVER_TESTS))"; cat .pytest-servers.log; \
	test $$rest -eq 0 && test $$served -eq 0

test: lint types pytest

# The fast tier (markers in pyproject.toml, set in tests/conftest.py): everything but the
# tests that start servers or processes and the PostgreSQL half of the store tests.
test-fast: setup
	$(BIN)/pytest -q -m "not integration and not postgres"

# The peers (Perceval, the jira library) go into benchmarks/.venv-peers, never into $(VENV).
bench: setup
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .typecheck .pytest-servers.log northwind.db northwind-report.json .pytest_cache .mypy_cache .ruff_cache \
		benchmarks/.venv-peers
