"""The airflow-mlops plugin for the Airflow UI: reports and model pages served by the API server.

:mod:`airflow_mlops.plugins.ui` holds the plugin class (registered by the provider), and
:mod:`airflow_mlops.plugins.app` the FastAPI app it mounts under ``/mlops``. Importing this
package, or the plugin module, imports no web framework and nothing heavy: every Airflow process
loads plugins (task processes too), and only the API server builds the app.
"""
