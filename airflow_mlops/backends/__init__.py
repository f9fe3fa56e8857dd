"""backends of airflow-mlops."""
