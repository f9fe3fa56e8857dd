"""Engines on the Airflow side: a data input opened where it lives, through the providers' hooks.

:func:`airflow_mlops.io.open_data` is the one entry point (it parses and checks the URI, then
calls :meth:`EngineSession.open`). An :class:`EngineSession` holds one runner per engine, so two
inputs on the same engine (both files on DuckDB, two tables of one connection) are compared in
one place, which lets a drift column be recomputed exactly when a binned bound is not decisive.

======================  ============================================================  =========
engine                  reached through                                              dialect
======================  ============================================================  =========
``duckdb``              DuckDB embedded in the worker process (files; object storage   duckdb
                        through the connection's fsspec filesystem)
``sql``                 the connection's ``common.sql`` hook (``PostgresHook``,         from the
                        ``SnowflakeHook``, ``BigQueryHook``, ``DatabricksSqlHook`` ...)  conn type
``spark``               a ``spark`` connection (master URL: ``local[2]``, ``yarn``,     spark
                        ``spark://...``) or a ``spark_connect`` one
                        (``SparkConnectHook``'s ``sc://`` URL)
======================  ============================================================  =========

Driver libraries are imported when an input is opened; a missing one raises
:class:`~airflow_mlops.exceptions.MissingExtraError` naming the ``engines`` extra.
"""

from __future__ import annotations

from airflow_mlops.engines.base import EngineInput, EngineSession

__all__ = ["EngineInput", "EngineSession"]
