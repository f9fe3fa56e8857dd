"""``python -m airflow_mlops.core.quality``: see :mod:`airflow_mlops.core.quality.cli`."""

from airflow_mlops.core.quality.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
