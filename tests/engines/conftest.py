"""The engines tier: one drift case and one gate case, on a file (pandas), DuckDB, a native
Postgres and Spark local[2].

Package-scoped (torn down when the tier ends: nothing of it outlives the tier) and small: one
Postgres (Debian's packages, started natively as the e2e tier does) and one Spark session
(local[2]; Java from the system, installed by tests/e2e/setup.sh when missing). The data is made here; the Airflow connections are environment connections, as a
deployment's secrets backend would hold them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.system import Postgres, ensure_system, start_postgres

PG_CONN = "mlops_engines_pg"
SPARK_CONN = "mlops_engines_spark"
TABLES = ("reference", "current", "gate_good", "gate_bad")


def drift_frame(rows: int, seed: int, *, drifted: bool) -> pd.DataFrame:
    """Columns of every kind the drift check types: continuous and rounded floats (some nulls and
    infinities), a wide integer, a small integer, a boolean and two strings."""
    rng = np.random.default_rng(seed)
    shift = 0.6 if drifted else 0.0
    amount = rng.normal(100.0 + 15 * shift, 15.0, rows)
    amount[rng.random(rows) < 0.03] = np.nan
    amount[:2] = [np.inf, -np.inf] if drifted else [np.nan, np.nan]
    colours = np.array(["red", "green", "blue", "black"], dtype=object)
    p = [0.1, 0.2, 0.3, 0.4] if drifted else [0.4, 0.3, 0.2, 0.1]
    return pd.DataFrame(
        {
            "amount": amount,
            "price": np.round(rng.gamma(2.0, 10.0 + 8 * shift, rows), 1),
            "age": rng.integers(18, 90, rows).astype("int64"),
            "rooms": rng.choice(
                np.arange(1, 6), rows, p=[0.1, 0.1, 0.2, 0.3, 0.3] if drifted else [0.2] * 5
            ).astype("int64"),
            "member": rng.random(rows) < 0.5,
            "colour": colours[rng.choice(4, rows, p=p)],
            "steady": rng.normal(0.0, 1.0, rows),
        }
    )


def gate_frame(rows: int, seed: int, *, bad: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "amount": rng.uniform(0, 100, rows),
            "country": rng.choice(np.array(["DE", "FR", "NL"], dtype=object), rows),
        }
    )
    if bad:
        frame.loc[:9, "amount"] = 250.0
        frame.loc[10:14, "country"] = "XX"
        frame.loc[20:22, "country"] = None
    return frame


ENGINE_SCHEMES = "file,s3,sql,spark"


@pytest.fixture(scope="package", autouse=True)
def engines_allowed() -> None:
    """``sql://`` and ``spark://`` name a connection: a deployment opts in to them (docs/security.md),
    as this tier's does."""
    key = "AIRFLOW__MLOPS__ALLOWED_DATA_SCHEMES"
    before = os.environ.get(key)
    os.environ[key] = ENGINE_SCHEMES
    yield
    if before is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = before


@dataclass
class EngineData:
    folder: Path
    pg: Postgres | None = None

    def file(self, name: str) -> str:
        return str(self.folder / f"{name}.parquet")


@pytest.fixture(scope="package")
def engine_data(tmp_path_factory: pytest.TempPathFactory) -> EngineData:
    folder = tmp_path_factory.mktemp("engines")
    frames = {
        "reference": drift_frame(3000, 1, drifted=False),
        "current": drift_frame(2500, 2, drifted=True),
        "gate_good": gate_frame(2000, 3, bad=False),
        "gate_bad": gate_frame(2000, 4, bad=True),
    }
    for name, frame in frames.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return EngineData(folder)


@pytest.fixture(scope="package")
def pg(engine_data: EngineData) -> str:
    """A native Postgres holding the tables, and an Airflow connection to it; the connection id."""
    server = start_postgres()
    try:
        import duckdb

        con = duckdb.connect()
        types = {"DOUBLE": "double precision", "BIGINT": "bigint", "BOOLEAN": "boolean", "VARCHAR": "text"}
        for name in TABLES:
            path = engine_data.file(name)
            schema = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
            server.psql(f"CREATE TABLE {name} ({', '.join(f'{c} {types[t]}' for c, t, *_ in schema)})")
            # COPY ... FROM STDIN through psql: the server needs no access to the test's files
            csv = (
                con.execute(f"SELECT * FROM read_parquet('{path}')")
                .df()
                .to_csv(index=False, header=False, na_rep="")
            )
            server.psql(f"COPY {name} FROM STDIN WITH (FORMAT csv);\n{csv}\\.\n")
        os.environ[f"AIRFLOW_CONN_{PG_CONN.upper()}"] = json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": server.port,
                "login": "postgres",
                "schema": "postgres",
            }  # fmt: skip
        )
        engine_data.pg = server
        yield PG_CONN
    finally:
        os.environ.pop(f"AIRFLOW_CONN_{PG_CONN.upper()}", None)
        server.stop()


@pytest.fixture(scope="package")
def spark(engine_data: EngineData) -> str:
    """One Spark session (local[2]) with the tables as views, and an Airflow connection; its id."""
    ensure_system("java")
    # py4j says goodbye at interpreter exit, after pytest closed the streams: keep it quiet
    logging.getLogger("py4j").setLevel(logging.WARNING)
    os.environ[f"AIRFLOW_CONN_{SPARK_CONN.upper()}"] = json.dumps(
        {
            "conn_type": "spark",
            "host": "local[2]",
            "extra": {"spark_conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}},
        }  # fmt: skip
    )
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    for name in TABLES:
        session.read.parquet(engine_data.file(name)).createOrReplaceTempView(name)
    yield SPARK_CONN
    os.environ.pop(f"AIRFLOW_CONN_{SPARK_CONN.upper()}", None)
    session.stop()
