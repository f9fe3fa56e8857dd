"""Drift and the quality gate beyond one machine's memory: DuckDB at 1M, 10M and 100M rows.

Generates reference and current parquet of N rows x 25 columns with DuckDB itself (10 continuous
floats, 5 rounded floats, 2 wide integers, 5 small integers, 3 strings; the current side shifts
6 of them), then runs each case in its own worker process and reports that process's peak RSS
and wall time:

* drift and gate through DuckDB at every size;
* drift and gate in memory (pandas, as Evidently) at 1M, side by side: time per row ratio and
  identical verdicts (per column, and the gate's failed expectations);
* the same 1M case through a native Postgres (tables loaded with COPY) and Spark local[2].

The generated files are deleted at the end (and on failure); free disk is checked first.

    .venv/bin/python bench/scale.py                     # 1M, 10M, 100M (takes a while)
    BENCH_SCALE_ROWS=1000000 .venv/bin/python bench/scale.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = [int(s) for s in os.environ.get("BENCH_SCALE_ROWS", "1000000,10000000,100000000").split(",")]
ENGINES_AT_1M = os.environ.get("BENCH_SCALE_ENGINES", "postgres,spark").split(",")
BYTES_PER_ROW = 130  # parquet, both sides, measured at 1M (checked against free disk before generating)

SUITE = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    *({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": f"f{i}"}} for i in range(10)),
    *(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": f"f{i}", "min_value": -6, "max_value": 6, "mostly": 0.999},
        }
        for i in range(10)
    ),  # fmt: skip
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "s0", "value_set": ["a", "b", "c", "d"]},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "s1", "value_set": ["x", "y"]},
        "severity": "warning",
    },  # fmt: skip
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "c0", "min_value": 0, "max_value": 7},
    },
    {
        "type": "expect_column_max_to_be_between",
        "kwargs": {"column": "w0", "min_value": 0, "max_value": 99_999},
    },
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "r0", "min_value": 9, "max_value": 11}},
]


def generate(path: Path, rows: int, *, drifted: bool, seed: float) -> None:
    import duckdb

    shift = 0.15 if drifted else 0.0
    # uniform on [-1.73, 1.73] (unit variance): continuous, ~all values distinct; cheap to generate
    cols = [f"(random() * 2 - 1) * 1.7320508 + {shift if i < 3 else 0} AS f{i}" for i in range(10)]
    cols += [f"round(random() * 20 + {shift * 4 if i == 0 else 0}, 1) AS r{i}" for i in range(5)]
    cols += [f"CAST(floor(random() * {100_000 if i else 100_000 - (20_000 if drifted else 0)}) AS BIGINT) AS w{i}"
             for i in range(2)]  # fmt: skip
    cols += [f"CAST(floor(random() * {8 if i else 7 + drifted}) AS INTEGER) AS c{i}" for i in range(5)]
    cols += [
        "CASE WHEN random() < 0.4 THEN 'a' WHEN random() < 0.5 THEN 'b' WHEN random() < 0.8 THEN 'c' ELSE 'd' END AS s0",
        "CASE WHEN random() < 0.5 THEN 'x' ELSE 'y' END AS s1",
        f"'k' || CAST(CAST(floor(random() * {30 if drifted else 25}) AS INTEGER) AS VARCHAR) AS s2",
    ]
    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB", "preserve_insertion_order": False})
    con.execute(f"SELECT setseed({seed})")
    con.execute(
        f"COPY (SELECT {', '.join(cols)} FROM range({rows})) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 500000)"
    )
    con.close()


# --------------------------------------------------------------------------------------------
# one case = one worker process (its peak RSS is the case's)

CASE = r"""
import json, sys, time
kind, engine, ref, cur, out = sys.argv[1:6]
import os
if os.environ.get("MLOPS_BENCH_SPARK_VIEWS"):  # the tables of the Spark case: views over the parquet
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "4").config(
        "spark.ui.enabled", "false").getOrCreate()
    for statement in os.environ["MLOPS_BENCH_SPARK_VIEWS"].split(";"):
        spark.sql(statement)
# imports first: the time is the work's, not the libraries' (GX alone takes ~15 s to import)
import numpy, pandas, scipy.stats, scipy.spatial, pyarrow.parquet, airflow.configuration, sqlglot, duckdb
from airflow_mlops.core.data import read_table
from airflow_mlops.core.drift import compare
from airflow_mlops.core.drift.pushdown import compare_on_engine
from airflow_mlops.io import engine_session, open_data, parse_data
if kind == "gate":
    import great_expectations
    from airflow_mlops.core.quality import compile_suite, load_suite, validate_frame, validate_source
t0 = time.perf_counter()
result = {}
if kind == "drift":
    if engine == "pandas":
        verdict = compare(read_table(ref), read_table(cur))
    else:
        with engine_session() as s:
            r = open_data(s, parse_data(ref), "duckdb" if engine == "duckdb" else engine)
            c = open_data(s, parse_data(cur), "duckdb" if engine == "duckdb" else engine)
            verdict = compare_on_engine((r, r.source), (c, c.source))
    result = verdict.summary()
else:
    compiled = compile_suite(load_suite(json.loads(sys.argv[6])))
    if engine == "pandas":
        df = read_table(cur)
        summary, _ = validate_frame(df, compiled, fail_on="critical", data=cur)
    else:
        with engine_session() as s:
            t = open_data(s, parse_data(cur), "duckdb" if engine == "duckdb" else engine)
            summary, _ = validate_source(t.gx_source(), t.columns(), t.row_count(), compiled, fail_on="critical", data=cur)
    result = {"success": summary["success"], "failed": sorted(f["expectation"] + ":" + str(f["column"]) for f in summary["failed"])}
result["seconds"] = time.perf_counter() - t0
# VmHWM: this process's own peak (ru_maxrss would include the parent's RSS at fork time)
result["rss_mb"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
json.dump(result, open(out, "w"), default=str)
"""


def run_case(kind: str, engine: str, ref: str, cur: str, env: dict[str, str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    argv = [sys.executable, "-c", CASE, kind, engine, ref, cur, out, json.dumps(SUITE)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} on {engine} failed:\n{proc.stderr[-3000:]}")
    with open(out) as fh:
        result = json.load(fh)
    os.unlink(out)
    result["wall"] = wall
    return result


def verdicts(drift: dict) -> dict:
    return {
        c: (v.get("method"), v.get("drifted"), v.get("skipped") is not None)
        for c, v in drift["per_column"].items()
    }


def max_score_gap(a: dict, b: dict) -> tuple[float, float]:
    """Largest |score difference| over exact columns, and over binned (error_bound) columns."""
    exact = binned = 0.0
    for col, v in a["per_column"].items():
        w = b["per_column"][col]
        if v.get("score") is None or w.get("score") is None:
            continue
        gap = abs(v["score"] - w["score"])
        if w.get("error_bound"):
            binned = max(binned, gap)
        else:
            exact = max(exact, gap)
    return exact, binned


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="mlops-bench-scale-", dir=os.environ.get("BENCH_SCALE_DIR")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "false",
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}  # fmt: skip
    env.setdefault("AIRFLOW_HOME", str(root / "airflow"))
    services: list = []
    rows_out: list[dict] = []
    try:
        free = shutil.disk_usage(root).free
        need = max(SIZES) * BYTES_PER_ROW * 1.3
        if need > free:
            print(f"not enough disk: {max(SIZES):,} rows need ~{need / 1e9:.0f} GB, {free / 1e9:.0f} GB free")
            return 1
        print(f"disk: {free / 1e9:.0f} GB free, the largest case needs ~{need / 1e9:.0f} GB")
        baseline: dict[str, dict] = {}
        for rows in sorted(SIZES):
            folder = root / f"{rows}"
            folder.mkdir()
            t0 = time.perf_counter()
            generate(folder / "reference.parquet", rows, drifted=False, seed=0.1)
            generate(folder / "current.parquet", rows, drifted=True, seed=0.2)
            size = du(folder)
            print(f"\n{rows:,} rows x 25 columns: generated in {time.perf_counter() - t0:.0f}s, "
                  f"{size / 1e9:.2f} GB on disk")  # fmt: skip
            ref, cur = str(folder / "reference.parquet"), str(folder / "current.parquet")
            engines = ["duckdb"] + (["pandas"] if rows == min(SIZES) else [])
            for engine in engines:
                for kind in ("drift", "gate"):
                    result = run_case(kind, engine, ref, cur, env)
                    result.update(kind=kind, engine=engine, rows=rows, disk=size)
                    rows_out.append(result)
                    print(
                        f"  {kind:5s} {engine:8s} {result['seconds']:8.1f}s  peak RSS {result['rss_mb']:7.0f} MB"
                    )
                    if rows == min(SIZES):
                        baseline[f"{kind}:{engine}"] = result
            if rows == min(SIZES):
                extra = engines_at_1m(folder, ref, cur, env, services)
                for result in extra:
                    result.update(rows=rows, disk=size)
                    rows_out.append(result)
                    baseline[f"{result['kind']}:{result['engine']}"] = result
            shutil.rmtree(folder, ignore_errors=True)
        report(rows_out, baseline)
        return 0
    finally:
        for stop in services:
            stop()
        shutil.rmtree(root, ignore_errors=True)
        print(f"\ncleaned up {root}")


def engines_at_1m(folder: Path, ref: str, cur: str, env: dict, services: list) -> list[dict]:
    """The 1M case through a native Postgres (loaded with COPY) and Spark local[2]."""
    out = []
    if "postgres" in ENGINES_AT_1M:
        sys.path.insert(0, str(REPO))
        from tests.e2e.system import start_postgres

        pg = start_postgres()
        services.append(pg.stop)
        import duckdb

        for name, path in (("reference", ref), ("current", cur)):
            csv = folder / f"{name}.csv"
            duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{path}')) TO '{csv}' (HEADER false)")
            schema = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
            types = {
                "DOUBLE": "double precision",
                "BIGINT": "bigint",
                "INTEGER": "integer",
                "VARCHAR": "text",
            }
            ddl = ", ".join(f'"{c}" {types[t]}' for c, t, *_ in schema)
            pg.psql(f"CREATE TABLE {name} ({ddl})")
            t0 = time.perf_counter()
            os.chmod(folder.parent, 0o755)
            os.chmod(folder, 0o755)
            os.chmod(csv, 0o644)
            pg.psql(f"COPY {name} FROM '{csv}' WITH (FORMAT csv); ANALYZE {name};")
            print(f"  postgres: loaded {name} in {time.perf_counter() - t0:.0f}s")
        pg_env = {**env, "AIRFLOW_CONN_BENCH_PG": json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": pg.port, "login": "postgres", "schema": "postgres"})}  # fmt: skip
        for kind in ("drift", "gate"):
            result = run_case(kind, "sql", "sql://bench_pg/reference", "sql://bench_pg/current", pg_env)
            result.update(kind=kind, engine="postgres")
            out.append(result)
            print(f"  {kind:5s} postgres {result['seconds']:8.1f}s  peak RSS {result['rss_mb']:7.0f} MB")
    if "spark" in ENGINES_AT_1M:
        views = f"CREATE OR REPLACE TEMP VIEW reference AS SELECT * FROM parquet.`{ref}`; " \
                f"CREATE OR REPLACE TEMP VIEW current AS SELECT * FROM parquet.`{cur}`"  # fmt: skip
        spark_env = {**env, "AIRFLOW_CONN_BENCH_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]", "extra": {
                         "spark_conf": {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}}}),
                     "MLOPS_BENCH_SPARK_VIEWS": views}  # fmt: skip
        for kind in ("drift", "gate"):
            result = run_case(kind, "spark", "spark://bench_spark/reference", "spark://bench_spark/current",
                              spark_env)  # fmt: skip
            result.update(kind=kind, engine="spark")
            out.append(result)
            print(f"  {kind:5s} spark    {result['seconds']:8.1f}s  peak RSS {result['rss_mb']:7.0f} MB (Python; the JVM is its own process)")  # fmt: skip
    return out


def report(rows_out: list[dict], baseline: dict[str, dict]) -> None:
    small = min(SIZES)
    print(
        "\n| case | engine | rows | seconds | µs/row | vs pandas per row | peak RSS MB | verdicts = pandas |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows_out:
        per_row = r["seconds"] / r["rows"] * 1e6
        base = baseline.get(f"{r['kind']}:pandas")
        ratio = per_row / (base["seconds"] / small * 1e6) if base else float("nan")
        same = ""
        if base and r["rows"] == small and r["engine"] != "pandas":
            if r["kind"] == "drift":
                same = "yes" if verdicts(r) == verdicts(base) else "NO"
                exact, binned = max_score_gap(base, r)
                same += f" (max score gap exact {exact:.1e}, binned {binned:.1e})"
            else:
                same = "yes" if (r["success"], r["failed"]) == (base["success"], base["failed"]) else "NO"
        print(f"| {r['kind']} | {r['engine']} | {r['rows']:,} | {r['seconds']:.1f} | {per_row:.2f} | "
              f"{ratio:.2f}x | {r['rss_mb']:.0f} | {same} |")  # fmt: skip
    drifts = {r["rows"]: r for r in rows_out if r["kind"] == "drift" and r["engine"] == "duckdb"}
    print("\ndrift verdicts on DuckDB by size: " + "; ".join(
        f"{n:,}: drift={d['drift_detected']} share={d['drift_share']:.2f}" for n, d in sorted(drifts.items())))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
