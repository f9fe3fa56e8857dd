"""A starter suite suggested from a table where it lives (the engine path of
:func:`airflow_mlops.core.quality.suggest_suite`): one profiling statement and one value count per
low-cardinality column, nothing read into the worker.

    python -c "from airflow_mlops.engines.suggest import suggest_table_suite as s; \\
               s('sql://warehouse/sales.orders', 'include/expectations/orders.json')"

The expectations are those of the file path (schema, row count, nulls, numeric ranges, category
sets) except the dtype family: type names are the engine's own, so they are left to the author.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_mlops.core.engines import sql
from airflow_mlops.core.engines.runner import column_kinds
from airflow_mlops.core.quality.suggest import range_expectation
from airflow_mlops.core.quality.suite import write_suite
from airflow_mlops.io import choose_engine, engine_session, open_data, parse_data


def suggest_table_suite(
    uri: str,
    path: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    engine: str = "duckdb",
    conn_id: str | None = None,
    max_categories: int = 20,
    range_margin: float = 0.1,
    mostly: float = 0.99,
) -> dict[str, Any]:
    """Suggest a suite from the table (or file, on DuckDB) at ``uri``; write it to ``path`` if given.

    :param engine: for a file ``uri``: ``duckdb`` (default) or ``pandas``; tables use their engine.
    """
    ref = parse_data(uri, what="reference data")
    if name is None:
        name = os.path.splitext(os.path.basename(os.fspath(path)))[0] if path is not None else "suggested"
    chosen = choose_engine(ref, engine, conn_id=conn_id, what="reference data")
    if chosen == "pandas":
        from airflow_mlops.core.quality.suggest import generate_suite

        return generate_suite(ref.uri, path, name=name, max_categories=max_categories,
                              range_margin=range_margin, mostly=mostly)  # fmt: skip
    with engine_session(conn_id) as session:
        table = open_data(session, ref, chosen, what="reference data")
        kinds = column_kinds(table, table.source)
        described = [(c, k) for c, k in kinds.items() if k in ("float", "int", "decimal", "string", "bool")]
        distinct = [c for c, k in described if k in ("string", "int")]
        row = table.run(sql.profile_sql(table.source, described, distinct))[1][0]
        rows = int(row[0])
        if rows == 0:
            raise ValueError(f"cannot suggest a suite from an empty table ({uri})")
        exps: list[dict[str, Any]] = [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}, "severity": "critical"},
            {"type": "expect_table_columns_to_match_set",
             "kwargs": {"column_set": list(kinds), "exact_match": True}, "severity": "warning"},
        ]  # fmt: skip
        stats: dict[str, dict[str, Any]] = {}
        i = 1
        for column, kind in described:
            stats[column] = {"count": int(row[i])}
            i += 1
            if kind in ("float", "int", "decimal"):
                stats[column].update(min=row[i + 1], max=row[i + 2])
                i += 4
        for column in distinct:
            stats[column]["distinct"] = int(row[i] or 0)
            i += 1
        for column, kind in kinds.items():
            exps.append(
                {"type": "expect_column_to_exist", "kwargs": {"column": column}, "severity": "critical"}
            )
            count = stats.get(column, {}).get("count")
            if count is None:
                continue
            null_rate = 1 - count / rows
            if null_rate == 0:
                exps.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column},
                             "severity": "critical"})  # fmt: skip
            else:
                allowed = min(1.0, null_rate * 2 + 0.01)
                exps.append({"type": "expect_column_values_to_not_be_null",
                             "kwargs": {"column": column, "mostly": round(max(0.0, 1 - allowed), 4)},
                             "severity": "warning", "meta": {"reference_null_rate": round(null_rate, 6)}})  # fmt: skip
            if kind in ("float", "int", "decimal") and stats[column]["min"] is not None:
                exps.append(range_expectation(column, float(stats[column]["min"]), float(stats[column]["max"]),
                                              integer=kind == "int", range_margin=range_margin, mostly=mostly))  # fmt: skip
            elif kind in ("string", "bool") and stats[column].get("distinct", 0) <= 2 * max_categories:
                values = [r[0] for r in table.run(sql.value_counts_sql(table.source, column, kind))[1]]
                if len(values) <= max_categories:
                    exps.append({"type": "expect_column_values_to_be_in_set",
                                 "kwargs": {"column": column, "value_set": sorted(values, key=lambda v: (str(type(v)), v)),
                                            "mostly": mostly}, "severity": "warning"})  # fmt: skip
    meta = {"generated_by": "airflow_mlops.engines.suggest.suggest_table_suite", "rows": rows, "reference": ref.uri,
            "engine": chosen}  # fmt: skip
    suite = {"name": name, "meta": meta, "expectations": exps}
    if path is not None:
        write_suite(suite, path)
    return suite
