# The README's two commands: `make demo` and `make test`. Each creates .venv with uv if missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := python3 -m uv

.PHONY: venv demo test compat lint airflow bench clean

# uv is installed with pip when missing; the venv is (re)built when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@test -x $(PY) || $(UV) venv --quiet --python 3.11 $(VENV) || $(UV) venv --quiet $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]'
	@# pyspark ships only a source archive: behind a registry that sends no cache headers, uv
	@# builds it again for every new venv and keeps each build (~0.9 GB). Dropping the builds no
	@# venv uses stops clean clones from filling the disk (49 of them left ~45 GB).
	@$(UV) cache prune --quiet || echo "uv cache prune failed; the venv is installed" >&2
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) include/demo/run.py

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tests/run.py

# The compat tier alone (make test runs it too): the built wheel in fresh venvs on the lowest and
# newest supported Airflow, MLflow, GX, Evidently and Python (tests/compat/test_compat.py).
compat: venv
	$(PY) tests/run.py tests/compat

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

airflow: venv
	$(PY) include/demo/standalone.py

bench: venv
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .airflow
