# The two commands a newcomer needs: `make test` and `make demo`.
# Everything else a fresh Debian machine lacks is installed on the way.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# Which Django the environment gets; CI also runs DJANGO='Django>=6.1,<6.2' on Python 3.13.
DJANGO ?= Django>=5.2,<5.3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint pytest django-tests demo bench load matrix dist clean

$(STAMP): pyproject.toml setup.py scripts/system-deps.sh Makefile
	scripts/system-deps.sh "$(PYTHON)"
	"$(PYTHON)" -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint]' '$(DJANGO)'
	echo '$(DJANGO)' > $@

test: lint pytest django-tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

django-tests: $(STAMP)
	$(BIN)/python tests/django_suite.py
	$(BIN)/python tests/django_suite.py --reset-session
	$(BIN)/python tests/django_suite.py --alone

# The example job queue, end to end (examples/jobqueue/demo.py).
demo: $(STAMP)
	$(BIN)/python examples/jobqueue/demo.py

# Results and the chart go to .cache/bench/.
bench: $(STAMP)
	scripts/system-deps.sh "$(PYTHON)" bench
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	mkdir -p .cache/bench
	$(BIN)/python bench/instructions.py --simulate-caches
	$(BIN)/python bench/request_cycle.py --json .cache/bench/request_cycle.json
	$(BIN)/python bench/same_process.py --control
	$(BIN)/python bench/same_process.py pooled
	$(BIN)/python bench/same_process.py --phases
	$(BIN)/python bench/job_queue.py --json .cache/bench/job_queue.json
	$(BIN)/python bench/web_requests.py --json .cache/bench/web_requests.json
	$(BIN)/python bench/chart.py .cache/bench/request_cycle.json .cache/bench/job_queue.json \
		.cache/bench/web_requests.json .cache/bench/bench.png
	$(BIN)/python bench/load.py --json .cache/bench/load.json
	$(BIN)/python bench/network.py

# The load run in full: 200 threads sharing a budget of 8 for 60 s (bench/load.py).
load: $(STAMP)
	$(BIN)/python bench/load.py

# The sdist and the wheel in dist/, checked (twine) and tried in a fresh venv
# (scripts/check_dist.py).
dist: $(STAMP)
	$(BIN)/python -m pip install -q build twine
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python scripts/check_dist.py dist

# pyenv keeps its other interpreters off PATH unless they are selected.
matrix: $(STAMP)
	$(BIN)/python -m pip install -q nox
	PYENV_VERSION="$$(pyenv versions --bare 2>/dev/null | tr '\n' ':')" $(BIN)/nox

clean:
	rm -rf $(VENV) .venv-* .nox .cache build *.egg-info
