"""Great Expectations 1.x: a :class:`~airflow_mlops.core.quality.suite.Suite` compiled into GX
expectations (errors name the culprit), the columns it is about checked against the data, and the
validation run in an ephemeral GX context.

``great_expectations`` costs ~12 s to import: it is imported only inside the functions here.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.quality.describe import short_list
from airflow_mlops.core.quality.suite import ExpectationSpec, Suite, SuiteError

if TYPE_CHECKING:
    import pandas as pd

RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE")

# Kwargs that name the columns an expectation is *about* (its domain). A column named there that
# the data lacks is a configuration error, not a data failure; ``expect_column_to_exist`` keeps
# ``column`` outside its domain, so a missing column there is an ordinary failed expectation.
_DOMAIN_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")


class MissingColumnError(ValueError):
    """The suite names columns that the data does not have."""

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(message)


def _gx_setup() -> None:
    # GX sends usage statistics unless told not to; a gate must not phone home.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Importing GX and building a context logs ~200 INFO lines ("Skipping registering function
    # ...", "Multiple declarations of metric ...") into the first gate's task log. Its warnings and
    # errors still show; a level the deployment set for the logger is kept.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)


@dataclass
class GxSource:
    """Where GX reads the data when it is not a DataFrame on the worker.

    ``kind="sql"``: GX's SQL datasource on ``connection_string`` (a SQLAlchemy URL) with a query
    asset ``query``; ``engine_kwargs`` go to ``create_engine``. ``kind="spark"``: GX's Spark
    datasource on the Spark DataFrame ``dataframe``.
    """

    kind: str
    connection_string: str | None = None
    query: str | None = None
    engine_kwargs: dict[str, Any] | None = None
    dataframe: Any = None


class _PersistedDialect(str):
    """A dialect name GX keeps one connection open for (see :func:`_duckdb_support`)."""

    @property
    def value(self) -> str:
        return str(self)


def _duckdb_support() -> None:
    """GX's SQL engine closes its connection before it fetches a query's rows, which works with
    client-side buffered drivers (psycopg) but loses the result of DuckDB's (the rows live in the
    connection). GX already keeps one open connection for dialects that need it (SQLite, SQL
    Server, BigQuery, Databricks); DuckDB joins that list."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    if not any(str(getattr(d, "value", d)) == "duckdb" for d in engine._PERSISTED_CONNECTION_DIALECTS):
        engine._PERSISTED_CONNECTION_DIALECTS = (
            *engine._PERSISTED_CONNECTION_DIALECTS,
            _PersistedDialect("duckdb"),
        )


def _batch(context: Any, data: Any) -> tuple[Any, dict[str, Any]]:
    """The batch definition for ``data`` (a DataFrame or a :class:`GxSource`) and its parameters."""
    if not isinstance(data, GxSource):
        batch = context.data_sources.add_pandas("airflow_mlops").add_dataframe_asset("data")
        return batch.add_batch_definition_whole_dataframe("whole"), {"dataframe": data}
    if data.kind == "spark":
        batch = context.data_sources.add_spark("airflow_mlops").add_dataframe_asset("data")
        return batch.add_batch_definition_whole_dataframe("whole"), {"dataframe": data.dataframe}
    if data.connection_string and data.connection_string.startswith("duckdb"):
        _duckdb_support()
    source = context.data_sources.add_sql(
        "airflow_mlops", connection_string=data.connection_string, kwargs=dict(data.engine_kwargs or {})
    )
    return source.add_query_asset("data", query=data.query).add_batch_definition_whole_table("whole"), {}


@dataclass
class CompiledSuite:
    """A :class:`Suite` turned into GX expectation objects (types and kwargs checked)."""

    suite: Suite
    expectations: list[Any]  # great_expectations Expectation objects, in suite order

    def domain_columns(self) -> dict[str, list[ExpectationSpec]]:
        """Columns the expectations are about, each with the expectations that name it."""
        out: dict[str, list[ExpectationSpec]] = {}
        for spec, exp in zip(self.suite.expectations, self.expectations, strict=True):
            for key in _DOMAIN_COLUMN_KEYS:
                if key not in type(exp).domain_keys:
                    continue
                value = spec.kwargs.get(key)
                names = value if isinstance(value, list) else [value] if value is not None else []
                for col in names:
                    out.setdefault(str(col), []).append(spec)
        return out


def known_expectation_types() -> list[str]:
    _gx_setup()
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return sorted(list_registered_expectation_implementations())


def compile_suite(suite: Suite) -> CompiledSuite:
    """Build GX expectation objects, failing on the first unknown type or bad kwargs.

    :raises SuiteError: naming the suite, the expectation's position and type, and for an
        unknown type the closest known names.
    """
    _gx_setup()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built = []
    for spec in suite.expectations:
        where = f"suite {suite.source}, {spec.label()}"
        config = ExpectationConfiguration(
            type=spec.type,
            kwargs=spec.kwargs,
            meta=spec.meta or None,
            description=spec.description,
            severity=spec.severity,
        )
        try:
            built.append(config.to_domain_obj())
        except ExpectationNotFoundError as err:
            hint = _did_you_mean(spec.type, known_expectation_types(), render=str)
            raise SuiteError(f"{where}: unknown expectation type {spec.type!r}{hint}") from err
        except Exception as err:  # pydantic validation of kwargs
            detail = " ".join(str(err).split())
            raise SuiteError(f"{where}: invalid kwargs {spec.kwargs}: {detail}") from err
    return CompiledSuite(suite=suite, expectations=built)


def check_columns(compiled: CompiledSuite, columns: Sequence[str], data_name: str) -> None:
    """Raise :class:`MissingColumnError` if the suite is about columns that ``data_name`` lacks."""
    present = {str(c) for c in columns}
    wanted = compiled.domain_columns()
    missing = [c for c in wanted if c not in present]
    if not missing:
        return
    details = "; ".join(
        f"column {c!r} (named by {', '.join(s.label() for s in wanted[c])}{_did_you_mean(c, present)})"
        for c in missing
    )
    raise MissingColumnError(
        f"suite {compiled.suite.source} names columns that data {data_name} does not have: {details}. "
        f"Data columns: {short_list(sorted(present), 30)}",
        missing,
    )


def _did_you_mean(name: str, candidates: Iterable[str], render: Callable[[str], str] = repr) -> str:
    """``"; did you mean a, b?"`` with the closest of ``candidates``, or ``""``."""
    close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(map(render, close))}?" if close else ""


def run_validation(
    df: pd.DataFrame | GxSource, compiled: CompiledSuite, result_format: str | dict = "SUMMARY"
) -> dict[str, Any]:
    """Validate ``df`` (a DataFrame, or a table an engine holds: :class:`GxSource`) with GX in an
    ephemeral context; the full result as a JSON-able dict.

    Each result carries ``position``: the 1-based place of its expectation in the suite (GX
    groups results by domain, not in suite order).
    """
    _gx_setup()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition, batch_parameters = _batch(context, df)
    gx_suite = gx.ExpectationSuite(name=compiled.suite.name or "suite")
    for exp in compiled.expectations:
        gx_suite.add_expectation(exp.copy(deep=True))
    gx_suite = context.suites.add(gx_suite)
    # Ids are assigned when the suite joins the context; the suite keeps insertion order.
    positions = {
        str(exp.id): spec.position
        for spec, exp in zip(compiled.suite.expectations, gx_suite.expectations, strict=True)
    }
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch_definition, suite=gx_suite, name="airflow_mlops_gate")
    )
    result = validation.run(batch_parameters=batch_parameters or None, result_format=result_format)
    out = result.to_json_dict()
    for item in out.get("results", []):
        item["position"] = positions.get(str((item.get("expectation_config") or {}).get("id")))
    out["results"].sort(key=lambda r: r.get("position") or 0)
    return out
