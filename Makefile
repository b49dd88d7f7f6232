# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.PHONY: run test lint fmt typecheck migrations-check bench install worker clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

## Serve the demo catalog on http://127.0.0.1:8000 (SQLite + in-process executor unless configured).
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --with-results
	$(PY) manage.py runserver $(HOST)

## A django-rq worker for the evaluations queue and the default one (schedule ticks, alerts; needs REDIS_URL).
worker: install
	$(PY) manage.py rqworker evaluations default --worker-class evaluations.worker.EvaluationWorker

## Lint, type check, migrations check and the whole test suite.
test: install lint typecheck migrations-check
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install
	$(VENV)/bin/mypy openbench accounts catalog evaluations leaderboard providers judging monitoring arena
	$(VENV)/bin/mypy bench/*.py  # the bench scripts import their siblings by path, so they are checked as files

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

bench: install
	$(PY) bench/throughput.py
	$(PY) bench/analytics.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
