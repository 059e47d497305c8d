# Everything a fresh machine with Python 3.11 needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test-servers run test slow test-unit test-e2e bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test-servers:         ## real servers the tests start: slapd and dovecot (Debian packages), node's oidc-provider (npm)
	bash tests/servers/install.sh
	bash tests/servers/install_node.sh

run: install          ## Temporal + worker host + API + a local GPU agent, in the foreground
	exec env SIMPLETUNER_DEV_PARENT_PID=$$PPID $(BIN)/simpletuner dev  # make's pid: see cli/dev.py

test: install test-servers  ## the suite against real processes, two at a time; prints the 15 slowest
	$(BIN)/python -m pytest -q -n 2 -m "not slow" --durations=15

slow: install test-servers  ## the long scenarios (200 concurrent submissions on each database, restarts of Temporal, the control plane and waiting jobs, replicas, agent failover, the dev command's signals, hundreds of continue-as-new runs, approval waits across runs, the reconciler, the API over TLS with a private CA), one at a time; CI runs them too
	$(BIN)/python -m pytest -q -p no:xdist -m slow --durations=15

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-e2e: install test-servers
	$(BIN)/python -m pytest -q tests/e2e

bench: install test-servers  ## benchmarks (run by hand; they print numbers)
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/approval.py
	$(BIN)/python bench/admission.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/ops.py
	$(BIN)/python bench/webhooks.py

clean:
	rm -rf .data
