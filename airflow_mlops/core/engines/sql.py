"""The statements an engine runs for the gate and the drift check, compiled by sqlglot.

Each builder returns one SQL string for one dialect (``duckdb``, ``postgres``, ``spark``,
``bigquery``, ``snowflake``, ``databricks`` ... any sqlglot dialect): the expression tree is
built once with sqlglot's builder, identifiers are quoted by it (a column named ``"a b"`` or
``select`` is never spliced into SQL text), float literals go in as ``CAST('<repr>' AS DOUBLE)``
so every engine reads the exact double, and sqlglot writes the dialect's spelling (``DOUBLE
PRECISION`` for Postgres, ``FLOAT64`` and back-ticks for BigQuery, ...).

A *source* is what ``FROM`` reads: a table name, a user's ``SELECT`` (validated here: one
read-only query), or an engine-specific table function (DuckDB's ``read_parquet``).

Pure: no Airflow, no engine driver; sqlglot is imported inside the functions (it is light, but
parse-time purity keeps even light libraries out of module import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

NO_APPROX_DISTINCT = frozenset({"postgres", "sqlite", "mysql", "tsql", "oracle"})
"""Dialects without an approximate distinct count: they count exactly."""


class QueryError(ValueError):
    """A user query or table name that cannot be used (the message names it)."""


@dataclass(frozen=True)
class Source:
    """What a statement reads: ``sql`` is a table reference or a parenthesised query, in ``dialect``."""

    sql: str
    dialect: str
    label: str
    """The input in words, for messages (the URI the user gave)."""

    def node(self) -> exp.Expression:
        import sqlglot

        node = sqlglot.parse_one(self.sql, read=self.dialect, into=None)
        if isinstance(node, sqlglot.exp.Query):
            return node.subquery("src")
        return node


def table_source(name: str, dialect: str, label: str | None = None) -> Source:
    """A table (``table``, ``schema.table`` or ``catalog.schema.table``) as a source.

    :raises QueryError: the name is not a table reference.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        table = exp.to_table(name, dialect=dialect)
    except (ParseError, ValueError) as err:
        raise QueryError(f"{name!r} is not a table name: {err}") from None
    if not isinstance(table, exp.Table) or not table.name:
        raise QueryError(f"{name!r} is not a table name")
    text = table.sql(dialect=dialect)
    # a name that parses as something more than a table (a ";" or a subquery) is refused
    if not isinstance(sqlglot.parse_one(text, read=dialect, into=exp.Table), exp.Table):
        raise QueryError(f"{name!r} is not a table name")
    return Source(text, dialect, label or name)


def query_source(query: str, dialect: str, label: str | None = None) -> Source:
    """A user's ``SELECT`` as a source.

    :raises QueryError: the text does not parse in ``dialect``, holds more than one statement, or
        is not a read-only query (``INSERT``, ``DROP`` ... are refused before anything runs).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except ParseError as err:
        raise QueryError(
            f"query does not parse as {dialect} SQL: {' '.join(str(err).split())}: {query}"
        ) from None
    if len(statements) != 1:
        raise QueryError(f"query must be one SELECT statement, got {len(statements)}: {query}")
    node = statements[0]
    if not isinstance(node, exp.Query) or any(
        isinstance(n, (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Merge))
        for n in node.walk()
    ):
        raise QueryError(f"query must be a read-only SELECT: {query}")
    return Source(f"({node.sql(dialect=dialect)})", dialect, label or query)


def function_source(name: str, args: Sequence[Any], dialect: str, label: str) -> Source:
    """A table function (``read_parquet(['a.parquet', 'b.parquet'])``) as a source; string
    arguments and lists of strings are quoted as literals."""
    from sqlglot import exp

    def literal(value: Any) -> exp.Expression:
        if isinstance(value, (list, tuple)):
            return exp.Array(expressions=[literal(v) for v in value])
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if isinstance(value, (int, float)):
            return exp.Literal.number(value)
        return exp.Literal.string(str(value))

    call = exp.Anonymous(this=name, expressions=[literal(a) for a in args])
    return Source(exp.Table(this=call).sql(dialect=dialect), dialect, label)


# --------------------------------------------------------------------------------------------
# expression helpers


def _col(name: str) -> exp.Expression:
    from sqlglot import exp

    return exp.column(name, quoted=True)


def _double(value: float | str) -> exp.Expression:
    from sqlglot import exp

    return exp.cast(exp.Literal.string(value if isinstance(value, str) else repr(float(value))), "DOUBLE")


def _as_double(expr: exp.Expression) -> exp.Expression:
    from sqlglot import exp

    return exp.cast(expr, "DOUBLE")


def finite(name: str, kind: str) -> exp.Expression:
    """The column as DOUBLE, NULL where it is null, NaN or infinite (floats only can be).

    NaN compares greater than every number in Postgres, DuckDB and Spark, so the two bounds
    drop it along with the infinities.
    """
    from sqlglot import exp

    value = _as_double(_col(name))
    if kind != "float":
        return value
    condition = exp.and_(exp.GT(this=_col(name), expression=_double("-Infinity")),
                         exp.LT(this=_col(name), expression=_double("Infinity")))  # fmt: skip
    return exp.Case(ifs=[exp.If(this=condition, true=value)])


def _sql(node: exp.Expression, dialect: str) -> str:
    return node.sql(dialect=dialect)


def _from(select: exp.Select, source: Source) -> exp.Select:
    return select.from_(source.node())


# --------------------------------------------------------------------------------------------
# statements


def sample_sql(source: Source, limit: int) -> str:
    """``SELECT * FROM source LIMIT limit``: the column names, and values to type them by."""
    from sqlglot import exp

    return _sql(_from(exp.select(exp.Star()), source).limit(limit), source.dialect)


def first_value_sql(source: Source, column: str) -> str:
    """One non-null value of ``column`` (to type a column whose sample held only nulls)."""
    from sqlglot import exp

    select = _from(exp.select(_col(column)), source).where(
        exp.Not(this=exp.Is(this=_col(column), expression=exp.Null()))
    )
    return _sql(select.limit(1), source.dialect)


def profile_sql(source: Source, columns: Sequence[tuple[str, str]], distinct: Sequence[str] = ()) -> str:
    """One row: the row count, then per column ``(name, kind)`` its non-null count and, for
    numeric kinds (``float``, ``int``, ``decimal``), its finite count, minimum, maximum and
    population standard deviation; then for each column in ``distinct`` its (approximate, where
    the dialect has it) number of distinct non-null values.

    Column order of the result: ``rows``, then per column ``count[, finite, min, max, std]``,
    then the distinct counts.
    """
    from sqlglot import exp

    items: list[exp.Expression] = [exp.func("COUNT", exp.Star())]
    for name, kind in columns:
        items.append(exp.func("COUNT", _col(name)))
        if kind in ("float", "int", "decimal"):
            value = finite(name, kind)
            items += [
                exp.func("COUNT", value.copy()),
                exp.func("MIN", value.copy()),
                exp.func("MAX", value.copy()),
                exp.func("STDDEV_POP", value.copy()),
            ]
    for name in distinct:
        if source.dialect in NO_APPROX_DISTINCT:
            items.append(exp.Count(this=exp.Distinct(expressions=[_col(name)])))
        else:
            items.append(exp.ApproxDistinct(this=_col(name)))
    return _sql(_from(exp.select(*items), source), source.dialect)


def count_distinct_sql(source: Source, column: str) -> str:
    """The exact number of distinct non-null values of ``column``."""
    from sqlglot import exp

    return _sql(
        _from(exp.select(exp.Count(this=exp.Distinct(expressions=[_col(column)]))), source), source.dialect
    )


def _values(source: Source, column: str, kind: str) -> exp.Select:
    """``SELECT <column cleaned> AS v FROM source``, nulls (and non-finite floats) dropped."""
    from sqlglot import exp

    value = finite(column, kind) if kind in ("float", "int", "decimal") else _col(column)
    inner = _from(exp.select(exp.alias_(value, "v", quoted=True)), source)
    return (
        exp.select(_col("v"))
        .from_(inner.subquery("vals"))
        .where(exp.Not(this=exp.Is(this=_col("v"), expression=exp.Null())))
    )


def value_counts_sql(source: Source, column: str, kind: str) -> str:
    """``(value, count)`` for every distinct non-null value of ``column`` (finite, for floats)."""
    from sqlglot import exp

    inner = _values(source, column, kind).subquery("clean")
    select = exp.select(_col("v"), exp.alias_(exp.func("COUNT", exp.Star()), "n", quoted=True))
    return _sql(select.from_(inner).group_by(_col("v")), source.dialect)


def grouped_counts_sql(source: Source, columns: Sequence[tuple[str, str]]) -> str:
    """The value counts of several columns in one scan: ``GROUPING SETS``, one set per column.

    Each ``(name, kind)`` is counted as :func:`value_counts_sql` counts it (``kind`` ``raw`` for the
    column as it is, a numeric kind for its finite values as DOUBLE). Result columns: a
    ``GROUPING()`` flag per column (0 on the rows of that column's set), the values ``c0, c1, ...``,
    then ``n``; rows whose value is null are the column's nulls (the caller drops them).
    """
    from sqlglot import exp

    values = [
        exp.alias_(
            finite(name, kind) if kind in ("float", "int", "decimal") else _col(name), f"c{i}", quoted=True
        )
        for i, (name, kind) in enumerate(columns)
    ]
    inner = _from(exp.select(*values), source).subquery("vals")
    keys = [_col(f"c{i}") for i in range(len(columns))]
    select = exp.select(
        *(exp.alias_(exp.func("GROUPING", k.copy()), f"g{i}", quoted=True) for i, k in enumerate(keys)),
        *(k.copy() for k in keys),
        exp.alias_(exp.func("COUNT", exp.Star()), "n", quoted=True),
    ).from_(inner)
    sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[k.copy()]) for k in keys])
    select.set("group", exp.Group(grouping_sets=[sets]))
    return _sql(select, source.dialect)


def histogram_sql(source: Source, column: str, kind: str, low: float, high: float, bins: int) -> str:
    """``(bin, count, sum, min, max)`` of the finite values of ``column`` over ``bins`` equal
    bins between ``low`` and ``high`` (empty bins left out). The bin a value falls in only needs
    to be monotone in the value: the certified bounds use each bin's own minimum and maximum."""
    from sqlglot import exp

    span = float(high) - float(low)
    scale = bins / span if span > 0 else 0.0
    raw = exp.Floor(this=exp.Mul(this=exp.Paren(this=exp.Sub(this=_col("v"), expression=_double(low))),
                                 expression=_double(scale)))  # fmt: skip
    index = exp.Least(this=exp.Greatest(this=exp.cast(raw, "BIGINT"), expressions=[exp.Literal.number(0)]),
                      expressions=[exp.Literal.number(bins - 1)])  # fmt: skip
    inner = _values(source, column, kind)
    inner = exp.select(exp.alias_(index, "b", quoted=True), _col("v")).from_(inner.subquery("clean"))
    select = exp.select(
        _col("b"),
        exp.alias_(exp.func("COUNT", exp.Star()), "n", quoted=True),
        exp.alias_(exp.func("SUM", _col("v")), "s", quoted=True),
        exp.alias_(exp.func("MIN", _col("v")), "lo", quoted=True),
        exp.alias_(exp.func("MAX", _col("v")), "hi", quoted=True),
    )
    return _sql(select.from_(inner.subquery("binned")).group_by(_col("b")), source.dialect)


def edges_counts_sql(source: Source, column: str, kind: str, edges: Sequence[float]) -> str:
    """``(bin, count)`` of the finite values of ``column`` over ``edges``, as ``np.histogram``
    counts them: bin ``i`` is ``[edges[i], edges[i+1])``, the last one closed."""
    from sqlglot import exp

    last = len(edges) - 2
    ifs = [
        exp.If(this=exp.LT(this=_col("v"), expression=_double(edge)), true=exp.Literal.number(i))
        for i, edge in enumerate(edges[1:-1])
    ]
    index = exp.Case(ifs=ifs, default=exp.Literal.number(last)) if ifs else exp.Literal.number(0)
    inner = exp.select(exp.alias_(index, "b", quoted=True)).from_(
        _values(source, column, kind).subquery("clean")
    )
    select = exp.select(_col("b"), exp.alias_(exp.func("COUNT", exp.Star()), "n", quoted=True))
    return _sql(select.from_(inner.subquery("binned")).group_by(_col("b")), source.dialect)


def exact_cdf_sql(reference: Source, current: Source, column: str, kind: str) -> str:
    """One row ``(n, m, area, d)`` over the merged finite values of both sides, sorted by the
    engine: ``area`` = the integral of ``|n_le_ref * m - n_le_cur * n|`` over the values and
    ``d`` = its maximum (so Wasserstein = area / (n*m), KS statistic = d / (n*m)), exact.

    Ties share their cumulative counts (a ``RANGE`` frame), and only the last of them has a
    non-zero gap to the next value, as in the merge of two sorted arrays.
    """
    import sqlglot

    dialect = reference.dialect
    ref = _values(reference, column, kind).select(
        sqlglot.exp.alias_(sqlglot.exp.Literal.number(1), "r", quoted=True)
    )
    cur = _values(current, column, kind).select(
        sqlglot.exp.alias_(sqlglot.exp.Literal.number(0), "r", quoted=True)
    )
    union = sqlglot.exp.union(ref, cur, distinct=False)
    template = """
        WITH u AS (SELECT * FROM merged__),
        totals AS (SELECT CAST(SUM(r) AS BIGINT) AS n, CAST(COUNT(*) - SUM(r) AS BIGINT) AS m FROM u),
        w AS (
            SELECT v,
                   CAST(SUM(r) OVER (ORDER BY v RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cr,
                   CAST(COUNT(*) OVER (ORDER BY v RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                        - SUM(r) OVER (ORDER BY v RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cc,
                   LEAD(v) OVER (ORDER BY v) AS nv
            FROM u
        )
        SELECT MAX(t.n), MAX(t.m),
               SUM(CAST(ABS(w.cr * t.m - w.cc * t.n) AS DOUBLE) * (w.nv - w.v)),
               MAX(ABS(w.cr * t.m - w.cc * t.n))
        FROM w CROSS JOIN totals AS t
    """
    # the template is in DuckDB's dialect, the sources in the engine's; sqlglot writes both in it
    merged = union.subquery("merged")

    def put_union(node: sqlglot.exp.Expression) -> sqlglot.exp.Expression:
        if isinstance(node, sqlglot.exp.Table) and node.name == "merged__":
            return merged.copy()
        return node

    return sqlglot.parse_one(template, read="duckdb").transform(put_union).sql(dialect=dialect)
