# The Airflow image of the compose stack: Airflow 3.3 with airflow-mlops (and every cloud extra)
# installed, so operators, sensors and the Azure ML trigger import in every component —
# the triggerer above all, which must import the trigger classes it runs.
#
#   docker compose build && docker compose up -d      (see docs/guide/compose.md)
FROM apache/airflow:3.3.2-python3.11

# Only what the wheel needs: a change to dags/, tests/ or docs/ does not rebuild this layer.
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-mlops/
COPY --chown=airflow:root airflow_mlops /opt/airflow-mlops/airflow_mlops

# Pin apache-airflow to the image's own version so the install cannot up- or downgrade it.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/airflow-mlops[all]"

# include/ (training entrypoint, GX suites, demo data generator) is baked in so the image also
# trains on its own; docker-compose.yaml mounts the working copy over it, and mounts dags/.
COPY --chown=airflow:root include /opt/airflow/include

ENV GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
