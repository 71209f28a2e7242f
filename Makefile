# The README's commands. Every target bootstraps the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.runtime-stamp
SPEC ?= experiments/quick.yaml

.PHONY: help install run full interpreters python-ft advise-example test test-fast lint format bench bench-decisions bench-advise vendor clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# make run needs only the runtime dependencies; tests, lint and benchmarks add the dev tools.
$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the project with its dev tools (make run installs the runtime only)

run: $(RUN_STAMP)  ## Run experiments/quick.yaml into data/results.db and publish reports/ (with the explorer)
	$(BIN)/pipeline run $(SPEC)
	test -f reports/explorer.html || $(BIN)/pipeline explore --out reports/explorer.html  # later runs refresh it

full: $(RUN_STAMP)  ## Run the fuller study, experiments/full.yaml
	$(BIN)/pipeline run experiments/full.yaml
	test -f reports/explorer.html || $(BIN)/pipeline explore --out reports/explorer.html

python-ft: $(RUN_STAMP)  ## Get a free-threaded CPython into .python-ft/ (found, uv, or built from source)
	$(BIN)/python scripts/python_ft.py

interpreters: $(RUN_STAMP) python-ft  ## Compare this interpreter with a free-threaded one
	$(BIN)/pipeline run experiments/interpreters.yaml

advise-example: $(RUN_STAMP)  ## pipeline advise on an example function (tests/advise_examples.py: a pure-Python loop)
	$(BIN)/pipeline advise advise_examples:pure_python --python-path tests

test: $(STAMP)  ## Run the whole test suite (what CI runs), on two workers; timing tests run alone
	$(BIN)/python -m pytest --durations=20

test-fast: $(STAMP)  ## Tests without the slow ones (over 1 s as recorded in tests/durations.json): about 30 s
	$(BIN)/python -m pytest -m "not slow"

# Run it as CI runs the suite (PIPELINE_TEST_POSTGRES, PIPELINE_TEST_PYTHON_FT, chromium: see
# .ci/run) so that every test is timed, and commit tests/durations.json.
test-durations: $(STAMP)  ## Time every test into tests/durations.json, which marks the slow ones
	$(BIN)/python -m pytest --store-durations

lint: $(STAMP)  ## ruff (lint + format check), mypy, and the layer rules (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy pipeline benchmarks scripts
	$(BIN)/lint-imports

format: $(STAMP)  ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## Benchmarks: calibration of the verdicts as run (adaptive looks, the compare gate, real A/A), run overhead, observer cost and drift, accuracy against pyperf, adaptive repetitions, report of 100k trials, the explorer over 100k trials, database, cluster dispatch
	$(BIN)/python -m benchmarks.calibration
	$(BIN)/python -m benchmarks.overhead $(SPEC)
	$(BIN)/python -m benchmarks.observer
	$(BIN)/python -m benchmarks.accuracy
	$(BIN)/python -m benchmarks.adaptive
	$(BIN)/python -m benchmarks.report
	$(BIN)/python -m benchmarks.explore
	$(BIN)/python -m benchmarks.database
	$(BIN)/python -m benchmarks.cluster

bench-decisions: $(STAMP)  ## Run SPEC (quick.yaml) five times as make run does: time and verdicts of each
	$(BIN)/python -m benchmarks.decisions $(SPEC) 5

bench-advise: $(STAMP)  ## pipeline advise on each archetype of tests/advise_examples.py five times: answers and times
	$(BIN)/python -m benchmarks.advise 5

PLOTLY_NPM = plotly.js-basic-dist-min@3.7.0
VENDOR = pipeline/publishing/vendor
vendor:  ## Fetch the explorer's plotly.js again from npm and check it against its SHA-256
	rm -rf .vendor && mkdir .vendor && cd .vendor && npm pack --silent $(PLOTLY_NPM) >/dev/null && tar xzf *.tgz
	echo "$$(cat $(VENDOR)/plotly-basic.sha256)  .vendor/package/plotly-basic.min.js" | sha256sum -c -
	cp .vendor/package/plotly-basic.min.js $(VENDOR)/ && cp .vendor/package/LICENSE $(VENDOR)/plotly-basic.LICENSE
	rm -rf .vendor

clean:  ## Remove the venv and caches (not data/ or reports/)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
