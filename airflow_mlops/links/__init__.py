"""links of airflow-mlops."""
