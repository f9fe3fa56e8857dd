-- Runs once, when the compose stack's Postgres volume is created: MLflow keeps its tracking
-- and registry store in its own database and role, apart from Airflow's metadata database.
CREATE ROLE mlflow WITH LOGIN PASSWORD 'mlflow';
CREATE DATABASE mlflow OWNER mlflow;
