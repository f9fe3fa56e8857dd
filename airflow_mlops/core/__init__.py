"""core of airflow-mlops."""
