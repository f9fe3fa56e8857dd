"""operators of airflow-mlops."""
