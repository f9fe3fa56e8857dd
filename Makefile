# The README's two commands: `make demo` and `make test`. Each creates .venv with uv if missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: venv demo test lint airflow bench clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

$(VENV)/.installed: pyproject.toml | $(UV)
	@test -x $(PY) || $(UV) venv --quiet --python 3.11 $(VENV) || $(UV) venv --quiet $(VENV)
	$(UV) pip install --quiet --python $(PY) -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) include/demo/run.py

test: venv
	$(VENV)/bin/ruff check .
	$(PY) tests/run.py

lint: venv
	$(VENV)/bin/ruff check .

airflow: venv
	$(PY) include/demo/standalone.py

bench: venv
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .airflow
