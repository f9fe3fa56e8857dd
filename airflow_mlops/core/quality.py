"""Data-quality gate logic on Great Expectations 1.x, with no Airflow import.

What lives here: loading a suite (a GX suite JSON/YAML file or a list of expectation dicts) with
per-expectation severities, turning it into GX expectations with errors that name the culprit,
running it on a DataFrame in an ephemeral GX context, turning the validation result into a short
verdict with readable failure lines, rendering a self-contained HTML report, and suggesting a
starter suite from a reference dataset.

``great_expectations`` costs ~12 s to import: it is imported only inside the functions that need
it. Command line (suite generation and a one-off check)::

    python -m airflow_mlops.core.quality suggest reference.parquet -o include/expectations/my.json
    python -m airflow_mlops.core.quality check data.parquet include/expectations/my.json
"""

from __future__ import annotations

import difflib
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SEVERITIES = ("info", "warning", "critical")
FAIL_ON = ("critical", "warning", "any")
RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE")
DEFAULT_SEVERITY = "critical"
SUITE_SUFFIXES_JSON = (".json",)
SUITE_SUFFIXES_YAML = (".yaml", ".yml")

# Kwargs that name the columns an expectation is *about* (its domain). A column named there that
# the data lacks is a configuration error, not a data failure; ``expect_column_to_exist`` keeps
# ``column`` outside its domain, so a missing column there is an ordinary failed expectation.
_DOMAIN_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")
_SAMPLE_SIZE = 5
_MAX_LIST = 20


class SuiteError(ValueError):
    """The suite cannot be used: unreadable file, bad structure, unknown type, bad kwargs."""


class MissingColumnError(ValueError):
    """The suite names columns that the data does not have."""

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(message)


@dataclass
class ExpectationSpec:
    """One expectation as the user wrote it, with its severity resolved."""

    type: str
    kwargs: dict[str, Any]
    severity: str = DEFAULT_SEVERITY
    meta: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    position: int = 0  # 1-based position in the suite, for messages

    def label(self) -> str:
        return f"expectation #{self.position} ({self.type})"


@dataclass
class Suite:
    """A loaded suite: its name, where it came from, and its expectations in order."""

    name: str
    source: str
    expectations: list[ExpectationSpec]
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Loading suites


def load_suite(suite: str | os.PathLike | Sequence[Mapping] | Mapping, *, name: str | None = None) -> Suite:
    """Load a suite from a JSON/YAML file path (or fsspec URL), a suite dict, or a list of expectation dicts.

    Each expectation is ``{"type": ..., "kwargs": {...}, "severity": "critical"|"warning"|"info"}``;
    ``expectation_type`` (GX 0.x) is accepted for ``type``, and the severity may also be given as
    ``meta.severity``. Missing severity means ``critical``.

    :raises SuiteError: the file is missing or does not parse, or its structure is wrong; the
        message names the file and, where it applies, the expectation.
    """
    if isinstance(suite, (str, os.PathLike)):
        source = os.fspath(suite)
        text = _read_text(source)
        obj = _parse_suite_text(text, source)
        default_name = os.path.splitext(os.path.basename(source))[0]
    elif isinstance(suite, Mapping) or (isinstance(suite, Sequence) and not isinstance(suite, (bytes, str))):
        source = "<inline suite>"
        obj = suite
        default_name = "inline"
    else:
        raise SuiteError(
            f"suite must be a path to a JSON/YAML suite file or a list of expectation dicts, "
            f"got {type(suite).__name__}"
        )
    return parse_suite(obj, source=source, name=name or default_name)


def _read_text(source: str) -> str:
    try:
        if "://" in source and not source.startswith("file://"):
            import fsspec

            with fsspec.open(source, "rt", encoding="utf-8") as fh:
                return fh.read()
        path = source[len("file://") :] if source.startswith("file://") else source
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError as err:
        raise SuiteError(f"suite file not found: {source}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise SuiteError(f"cannot read suite file {source}: {err}") from err


def _parse_suite_text(text: str, source: str) -> Any:
    lower = source.lower()
    if lower.endswith(SUITE_SUFFIXES_YAML):
        import yaml

        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SuiteError(f"suite file {source} is not valid YAML: {err}") from err
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise SuiteError(
                f"suite file {source} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
            ) from err
    if obj is None:
        raise SuiteError(f"suite file {source} is empty")
    return obj


def parse_suite(obj: Any, *, source: str = "<inline suite>", name: str = "suite") -> Suite:
    """Validate the structure of a suite object (dict with ``expectations`` or a list) into a :class:`Suite`."""
    meta: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        if "expectations" not in obj:
            raise SuiteError(f"suite {source} has no 'expectations' list (keys: {sorted(obj)})")
        items = obj["expectations"]
        name = obj.get("name") or obj.get("expectation_suite_name") or name
        meta = dict(obj.get("meta") or {})
    else:
        items = obj
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise SuiteError(f"suite {source}: 'expectations' must be a list, got {type(items).__name__}")
    if not items:
        # An empty suite would pass every dataset: never report that as "data passed".
        raise SuiteError(f"suite {source} has no expectations")
    specs = [_parse_expectation(item, i, source) for i, item in enumerate(items, start=1)]
    return Suite(name=str(name), source=source, expectations=specs, meta=meta)


def _parse_expectation(item: Any, position: int, source: str) -> ExpectationSpec:
    where = f"suite {source}, expectation #{position}"
    if not isinstance(item, Mapping):
        raise SuiteError(f"{where}: must be a dict with 'type' and 'kwargs', got {type(item).__name__}")
    type_ = item.get("type") or item.get("expectation_type")
    if not type_ or not isinstance(type_, str):
        raise SuiteError(f"{where}: missing 'type' (e.g. 'expect_column_values_to_not_be_null')")
    kwargs = item.get("kwargs", {})
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise SuiteError(f"{where} ({type_}): 'kwargs' must be a dict, got {type(kwargs).__name__}")
    meta = item.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise SuiteError(f"{where} ({type_}): 'meta' must be a dict, got {type(meta).__name__}")
    severity = item.get("severity") or meta.get("severity") or DEFAULT_SEVERITY
    severity = str(getattr(severity, "value", severity)).lower()
    if severity not in SEVERITIES:
        raise SuiteError(f"{where} ({type_}): severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    kwargs = {k: v for k, v in kwargs.items() if k != "batch_id"}
    return ExpectationSpec(
        type=type_,
        kwargs=dict(kwargs),
        severity=severity,
        meta={k: v for k, v in meta.items() if k != "severity"},
        description=item.get("description"),
        position=position,
    )


def suite_to_dict(suite: Suite) -> dict[str, Any]:
    """The suite in GX 1.x JSON layout (``name``, ``expectations`` with ``severity``), re-loadable."""
    return {
        "name": suite.name,
        "meta": suite.meta,
        "expectations": [
            {
                "type": s.type,
                "kwargs": s.kwargs,
                "severity": s.severity,
                **({"meta": s.meta} if s.meta else {}),
                **({"description": s.description} if s.description else {}),
            }
            for s in suite.expectations
        ],
    }


# --------------------------------------------------------------------------------------------
# Severities


def blocks(severity: str, fail_on: str) -> bool:
    """Whether a failed expectation of ``severity`` fails the gate under ``fail_on``."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    if fail_on == "any":
        return True
    return SEVERITIES.index(severity) >= SEVERITIES.index(fail_on)


# --------------------------------------------------------------------------------------------
# Great Expectations


def _gx_setup() -> None:
    # GX sends usage statistics unless told not to; a gate must not phone home.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


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
            close = difflib.get_close_matches(spec.type, known_expectation_types(), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
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
    details = "; ".join(f"column {c!r} (named by {', '.join(s.label() for s in wanted[c])})" for c in missing)
    raise MissingColumnError(
        f"suite {compiled.suite.source} names columns that data {data_name} does not have: {details}. "
        f"Data columns: {_short_list(sorted(present), 30)}",
        missing,
    )


def run_validation(
    df: pd.DataFrame, compiled: CompiledSuite, result_format: str | dict = "SUMMARY"
) -> dict[str, Any]:
    """Validate ``df`` with GX in an ephemeral context; the full result as a JSON-able dict.

    Each result carries ``position``: the 1-based place of its expectation in the suite (GX
    groups results by domain, not in suite order).
    """
    _gx_setup()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("airflow_mlops")
        .add_dataframe_asset("data")
        .add_batch_definition_whole_dataframe("whole")
    )
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
    result = validation.run(batch_parameters={"dataframe": df}, result_format=result_format)
    out = result.to_json_dict()
    for item in out.get("results", []):
        item["position"] = positions.get(str((item.get("expectation_config") or {}).get("id")))
    out["results"].sort(key=lambda r: r.get("position") or 0)
    return out


# --------------------------------------------------------------------------------------------
# Readable verdicts


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _short_list(values: Sequence[Any], limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(_fmt(v) for v in values[:limit])
    more = f", ... (+{len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _pct(value: float) -> str:
    if value >= 1:
        return f"{value:.1f}%"
    if value >= 0.01:
        return f"{value:.2f}%"
    return f"{value:.2g}%"


def _range(kw: Mapping[str, Any]) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is not None:
        left = "(" if kw.get("strict_min") else "["
        right = ")" if kw.get("strict_max") else "]"
        return f"{left}{_fmt(lo)}, {_fmt(hi)}{right}"
    if lo is not None:
        return f"{'>' if kw.get('strict_min') else '>='} {_fmt(lo)}"
    if hi is not None:
        return f"{'<' if kw.get('strict_max') else '<='} {_fmt(hi)}"
    return "(no bounds)"


def _outside(kw: Mapping[str, Any]) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is None:
        return f"{'at or below' if kw.get('strict_min') else 'below'} {_fmt(lo)}"
    if hi is not None and lo is None:
        return f"{'at or above' if kw.get('strict_max') else 'above'} {_fmt(hi)}"
    return f"outside {_range(kw)}"


def _within(kw: Mapping[str, Any]) -> str:
    text = _range(kw)
    return f"within {text}" if text.startswith(("[", "(")) else text


def _subject(kw: Mapping[str, Any], type_: str) -> tuple[str, str | list[str] | None]:
    if "column" in kw and not type_.startswith("expect_table"):
        return f"column {kw['column']!r}", kw["column"]
    if "column_A" in kw and "column_B" in kw:
        cols = [kw["column_A"], kw["column_B"]]
        return f"columns {cols[0]!r}, {cols[1]!r}", cols
    if "column_list" in kw and not type_.startswith("expect_table"):
        cols = list(kw["column_list"])
        return "columns " + ", ".join(repr(c) for c in cols), cols
    return "table", None


def _stat_name(type_: str) -> str:
    core = type_.removeprefix("expect_").removeprefix("column_").removeprefix("table_")
    for suffix in ("_to_be_between", "_to_equal", "_to_be_in_set"):
        core = core.removesuffix(suffix)
    return core.replace("_", " ")


def expected_text(type_: str, kw: Mapping[str, Any]) -> str:
    """What the expectation asks for, in words."""
    if type_ == "expect_column_values_to_be_between":
        text = f"values {_within(kw)}"
    elif type_ == "expect_column_values_to_not_be_null":
        text = "no nulls"
    elif type_ == "expect_column_values_to_be_null":
        text = "all nulls"
    elif type_ == "expect_column_values_to_be_in_set":
        text = f"values in {_short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_values_to_not_be_in_set":
        text = f"values not in {_short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_values_to_be_unique":
        text = "unique values"
    elif type_ == "expect_column_values_to_match_regex":
        text = f"values matching {kw.get('regex')!r}"
    elif type_ == "expect_column_values_to_not_match_regex":
        text = f"values not matching {kw.get('regex')!r}"
    elif type_ == "expect_column_value_lengths_to_be_between":
        text = f"value lengths {_within(kw)}"
    elif type_ == "expect_column_values_to_be_of_type":
        text = f"dtype {kw.get('type_')}"
    elif type_ == "expect_column_values_to_be_in_type_list":
        text = f"dtype in {_short_list(kw.get('type_list') or [])}"
    elif type_ == "expect_column_to_exist":
        text = "column exists"
    elif type_ == "expect_table_columns_to_match_set":
        exact = "exactly " if kw.get("exact_match", True) else "at least "
        text = f"columns {exact}{_short_list(sorted(map(str, kw.get('column_set') or [])))}"
    elif type_ == "expect_table_columns_to_match_ordered_list":
        text = f"columns in order {_short_list(kw.get('column_list') or [])}"
    elif type_ == "expect_column_distinct_values_to_be_in_set":
        text = f"distinct values within {_short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_distinct_values_to_contain_set":
        text = f"distinct values include {_short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_distinct_values_to_equal_set":
        text = f"distinct values equal to {_short_list(kw.get('value_set') or [])}"
    elif type_.endswith("_to_be_between"):
        text = f"{_stat_name(type_)} {_within(kw)}"
    elif type_.endswith("_to_equal") and "value" in kw:
        text = f"{_stat_name(type_)} equal to {_fmt(kw['value'])}"
    else:
        shown = {k: v for k, v in kw.items() if k not in ("column", "batch_id")}
        text = f"{type_.removeprefix('expect_').replace('_', ' ')} {json.dumps(shown, default=str)}"
    mostly = kw.get("mostly")
    if mostly is not None and mostly < 1:
        text += f" (for at least {_pct(mostly * 100)} of rows)"
    return text


def _violation(type_: str, kw: Mapping[str, Any]) -> str:
    """What an unexpected value did wrong, for map expectations."""
    return {
        "expect_column_values_to_be_between": _outside(kw),
        "expect_column_values_to_not_be_null": "are null",
        "expect_column_values_to_be_null": "are not null",
        "expect_column_values_to_be_in_set": f"not in {_short_list(kw.get('value_set') or [])}",
        "expect_column_values_to_not_be_in_set": f"in the forbidden set {_short_list(kw.get('value_set') or [])}",
        "expect_column_values_to_be_unique": "are duplicated",
        "expect_column_values_to_match_regex": f"do not match {kw.get('regex')!r}",
        "expect_column_values_to_not_match_regex": f"match {kw.get('regex')!r}",
        "expect_column_value_lengths_to_be_between": f"have a length {_outside(kw)}",
        "expect_column_values_to_be_of_type": f"are not of type {kw.get('type_')}",
        "expect_column_values_to_be_in_type_list": f"have a type not in {_short_list(kw.get('type_list') or [])}",
    }.get(type_, f"violate: {expected_text(type_, kw)}")


def _sample(result: Mapping[str, Any]) -> list[Any]:
    counts = result.get("partial_unexpected_counts")
    if counts:
        values = [c.get("value") for c in counts]
    else:
        values = []
        for v in result.get("partial_unexpected_list") or []:
            if v not in values:
                values.append(v)
    return [v for v in values if v is not None][:_SAMPLE_SIZE]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:_MAX_LIST]}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in list(value)[:_MAX_LIST]]
    return str(value)


def describe_result(item: Mapping[str, Any]) -> dict[str, Any]:
    """One expectation result as ``{expectation, column, severity, success, expected, observed, message}``."""
    config = item.get("expectation_config") or {}
    type_ = config.get("type") or config.get("expectation_type") or "?"
    kw = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    severity = str(config.get("severity") or (config.get("meta") or {}).get("severity") or DEFAULT_SEVERITY)
    result = item.get("result") or {}
    subject, column = _subject(kw, type_)
    expected = expected_text(type_, kw)
    error = _exception_message(item.get("exception_info"))
    observed: Any = None
    if error:
        message = f"{subject}: {type_} could not be evaluated: {error}"
    elif "unexpected_count" in result:
        n = result.get("unexpected_count") or 0
        total = result.get("element_count") or 0
        share = 100.0 * n / total if total else 0.0
        sample = _sample(result)
        observed = {
            "unexpected_count": n,
            "element_count": total,
            "unexpected_percent": round(share, 4),
            "sample": _jsonable(sample),
        }
        message = f"{subject}: {n} of {total} values ({_pct(share)}) {_violation(type_, kw)}"
        if kw.get("mostly") is not None and kw["mostly"] < 1:
            message += f" (at most {_pct(100 * (1 - kw['mostly']))} allowed)"
        if sample:
            message += f"; unexpected sample: {_short_list(sample, _SAMPLE_SIZE)}"
    elif type_ == "expect_column_to_exist":
        message = f"column {kw.get('column')!r} " + ("exists" if item.get("success") else "does not exist")
        column = kw.get("column")
    elif "observed_value" in result:
        observed = _jsonable(result["observed_value"])
        message = f"{subject}: {_observed_text(type_, kw, result['observed_value'], result)}"
    else:
        message = f"{subject}: expected {expected}" + (
            "" if item.get("success") else " (no details in result)"
        )
    return {
        "position": item.get("position"),
        "expectation": type_,
        "column": column,
        "severity": severity,
        "success": bool(item.get("success")),
        "expected": expected,
        "observed": observed,
        "message": message,
    }


def _exception_message(info: Any) -> str | None:
    """The error GX caught, from either layout of ``exception_info`` (flat, or keyed by metric)."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "error") if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, Mapping) and (value.get("raised_exception") or value.get("exception_message")):
            return value.get("exception_message") or "error"
    return None


def _observed_text(type_: str, kw: Mapping[str, Any], observed: Any, result: Mapping[str, Any]) -> str:
    if type_ in ("expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"):
        want = list(kw.get("column_set") or kw.get("column_list") or [])
        have = list(observed or [])
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        parts = []
        if missing:
            parts.append(f"missing columns {_short_list(missing)}")
        if extra:
            parts.append(f"unexpected columns {_short_list(extra)}")
        if not parts:
            parts.append(f"columns {_short_list(have)}")
        return "; ".join(parts) + f"; expected {expected_text(type_, kw)}"
    if type_.startswith("expect_column_distinct_values"):
        want = list(kw.get("value_set") or [])
        have = list(observed or [])
        extra = [v for v in have if v not in want]
        missing = [v for v in want if v not in have]
        parts = []
        if extra and type_ != "expect_column_distinct_values_to_contain_set":
            parts.append(f"unexpected distinct values {_short_list(extra)}")
        if missing and type_ != "expect_column_distinct_values_to_be_in_set":
            parts.append(f"missing values {_short_list(missing)}")
        return (
            "; ".join(parts or [f"distinct values {_short_list(have)}"])
            + f"; expected {expected_text(type_, kw)}"
        )
    if type_ in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        return f"dtype is {observed}, expected {expected_text(type_, kw).removeprefix('dtype ')}"
    shown = _short_list(observed) if isinstance(observed, (list, tuple)) else _fmt(observed)
    return f"{_stat_name(type_)} is {shown}, expected {expected_text(type_, kw).removeprefix(_stat_name(type_) + ' ')}"


def summarize(
    result: Mapping[str, Any],
    *,
    fail_on: str = "critical",
    row_count: int | None = None,
    data: str | None = None,
    suite: str | None = None,
) -> dict[str, Any]:
    """The gate's verdict from a GX validation result (small, JSON-able: it goes to XCom).

    ``success`` is the gate's verdict: no failed expectation at or above ``fail_on``. Failures
    below it are listed in ``failed`` with ``blocking: false``.
    """
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    failed = []
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for item in result.get("results", []):
        if item.get("success"):
            continue
        row = describe_result(item)
        row["blocking"] = blocks(row["severity"], fail_on)
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
        failed.append(row)
    stats = dict(result.get("statistics") or {})
    stats["failed_by_severity"] = by_severity
    if row_count is not None:
        stats["row_count"] = int(row_count)
    blocking = [f for f in failed if f["blocking"]]
    return {
        "success": not blocking,
        "fail_on": fail_on,
        "evaluated": int(stats.get("evaluated_expectations", len(result.get("results", [])))),
        "failed": failed,
        "statistics": stats,
        "data": data,
        "suite": suite,
        "report_uri": None,
    }


def failure_message(summary: Mapping[str, Any], limit: int = 25) -> str:
    """Readable multi-line verdict for the exception and the task log."""
    failed = summary.get("failed") or []
    blocking = [f for f in failed if f.get("blocking")]
    other = [f for f in failed if not f.get("blocking")]
    head = (
        f"Data quality gate {'passed' if summary.get('success') else 'FAILED'} for {summary.get('data')} "
        f"(suite {summary.get('suite')}, fail_on={summary.get('fail_on')}): "
        f"{len(failed)} of {summary.get('evaluated')} expectations failed"
    )
    if blocking:
        head += f", {len(blocking)} at or above '{summary.get('fail_on')}'"
    lines = [head]

    def add(rows: list[dict[str, Any]], title: str) -> None:
        if not rows:
            return
        lines.append(title)
        for row in rows[:limit]:
            lines.append(f"  - [{row['severity']}] {row['message']}")
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more (see the report)")

    add(blocking, "Blocking failures:")
    add(
        other,
        "Non-blocking failures:" if blocking else "Failures below the fail_on threshold (not blocking):",
    )
    if summary.get("report_uri"):
        lines.append(f"Report: {summary['report_uri']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# HTML report

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem;margin-bottom:.2rem}.verdict{font-size:1.1rem;font-weight:600;padding:.4rem .8rem;
border-radius:6px;display:inline-block}.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.9rem}th,td{border:1px solid #d0d7de;
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}tr.blocking td{background:#ffebe9}
tr.nonblocking td{background:#fff8c5}code{font-size:.85rem}dl{display:grid;grid-template-columns:max-content auto;
gap:.2rem 1rem}dt{font-weight:600}.sev-critical{color:#a40e26;font-weight:600}.sev-warning{color:#9a6700}
"""


def render_html(
    summary: Mapping[str, Any], result: Mapping[str, Any], *, result_link: str | None = None
) -> str:
    """A small self-contained HTML page: verdict, context, and one table row per expectation."""
    esc = html.escape
    stats = summary.get("statistics") or {}
    fail_on = summary.get("fail_on") or "critical"
    rows = []
    for item in result.get("results", []):
        row = describe_result(item)
        if row["success"]:
            status, css = "passed", "passed"
        elif blocks(row["severity"], fail_on):
            status, css = "FAILED (blocking)", "blocking"
        else:
            status, css = "failed (not blocking)", "nonblocking"
        observed = row["observed"]
        observed_text = "" if observed is None else json.dumps(observed, default=str)
        rows.append(
            f"<tr class='{css}'><td>{esc(str(row['position'] or ''))}</td>"
            f"<td><code>{esc(row['expectation'])}</code></td>"
            f"<td>{esc(_column_text(row['column']))}</td>"
            f"<td class='sev-{esc(row['severity'])}'>{esc(row['severity'])}</td>"
            f"<td>{esc(status)}</td><td>{esc(row['expected'])}</td>"
            f"<td><code>{esc(observed_text)}</code></td><td>{esc(row['message'])}</td></tr>"
        )
    verdict = "PASSED" if summary.get("success") else "FAILED"
    meta = result.get("meta") or {}
    facts = [
        ("Data", summary.get("data")),
        ("Suite", summary.get("suite")),
        ("Fail on", fail_on),
        ("Rows", stats.get("row_count")),
        ("Evaluated", summary.get("evaluated")),
        ("Failed", len(summary.get("failed") or [])),
        (
            "Failed by severity",
            ", ".join(f"{k}: {v}" for k, v in (stats.get("failed_by_severity") or {}).items()),
        ),
        ("Success percent", stats.get("success_percent")),
        ("Validated at", meta.get("validation_time")),
        ("Great Expectations", meta.get("great_expectations_version")),
    ]
    facts_html = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc('' if v is None else str(v))}</dd>" for k, v in facts if v is not None
    )
    link = (
        f"<p>Full validation result: <a href='{esc(result_link)}'>{esc(result_link)}</a></p>"
        if result_link
        else ""
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Data quality: {esc(verdict)} - {esc(str(summary.get('suite')))}</title><style>{_CSS}</style>"
        "</head><body>"
        f"<h1>Data quality gate</h1><p class='verdict {'pass' if summary.get('success') else 'fail'}'>"
        f"{esc(verdict)}</p><dl>{facts_html}</dl>{link}"
        "<table><thead><tr><th>#</th><th>Expectation</th><th>Column</th><th>Severity</th><th>Status</th>"
        "<th>Expected</th><th>Observed</th><th>Details</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )


def _column_text(column: Any) -> str:
    if column is None:
        return "(table)"
    if isinstance(column, list):
        return ", ".join(map(str, column))
    return str(column)


# --------------------------------------------------------------------------------------------
# Suite suggestion from a reference dataset

_NUMERIC_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64",
]  # fmt: skip
_STRING_TYPES = ["str", "string", "object"]
_BOOL_TYPES = ["bool", "boolean"]


def suggest_suite(
    df: pd.DataFrame,
    *,
    name: str = "suggested",
    reference: str | None = None,
    max_categories: int = 20,
    range_margin: float = 0.1,
    mostly: float = 0.99,
) -> dict[str, Any]:
    """A starter suite (GX 1.x JSON layout) describing ``df``: edit it, then use it as a gate.

    - schema: every column exists (critical), no unknown columns (warning), dtype family (critical);
    - row count at least 1 (critical);
    - nulls: columns without nulls must stay without (critical); columns with nulls keep roughly
      their null rate (warning);
    - numeric ranges: the reference range widened by ``range_margin`` of its span, for ``mostly``
      of the rows (critical);
    - categories: low-cardinality text/categorical/bool columns keep their values (warning).

    :param df: the reference data.
    :param name: suite name.
    :param reference: where the data came from, recorded in the suite's ``meta``.
    :param max_categories: text columns with at most this many distinct values get a value set.
    :param range_margin: widen numeric ranges by this fraction of the observed span on each side.
    :param mostly: share of rows that must satisfy range and category expectations.
    """
    import pandas as pd
    from pandas.api import types as ptypes

    if len(df) == 0:
        raise ValueError(
            f"cannot suggest a suite from an empty dataset{f' ({reference})' if reference else ''}"
        )
    columns = [str(c) for c in df.columns]
    exps: list[dict[str, Any]] = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}, "severity": "critical"},
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": columns, "exact_match": True},
            "severity": "warning",
        },
    ]
    for col in df.columns:
        s = df[col]
        c = str(col)
        exps.append({"type": "expect_column_to_exist", "kwargs": {"column": c}, "severity": "critical"})
        if isinstance(s.dtype, pd.CategoricalDtype):
            # GX compares a categorical dtype with its categories against a bare CategoricalDtype,
            # which never matches: the value set below checks these columns instead.
            family = None
        elif ptypes.is_bool_dtype(s):
            family = _BOOL_TYPES
        elif ptypes.is_numeric_dtype(s):
            family = _NUMERIC_TYPES
        elif ptypes.is_datetime64_any_dtype(s):
            family = [str(s.dtype)]
        else:
            family = _STRING_TYPES
        if family:
            exps.append(
                {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": c, "type_list": family},
                 "severity": "critical"}
            )  # fmt: skip
        null_rate = float(s.isna().mean())
        if null_rate == 0:
            exps.append(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": c},
                    "severity": "critical",
                }
            )
        else:
            allowed = min(1.0, null_rate * 2 + 0.01)
            exps.append(
                {"type": "expect_column_values_to_not_be_null",
                 "kwargs": {"column": c, "mostly": round(max(0.0, 1 - allowed), 4)},
                 "severity": "warning", "meta": {"reference_null_rate": round(null_rate, 6)}}
            )  # fmt: skip
        non_null = s.dropna()
        if non_null.empty:
            continue
        if ptypes.is_numeric_dtype(s) and not ptypes.is_bool_dtype(s):
            lo, hi = float(non_null.min()), float(non_null.max())
            margin = (hi - lo) * range_margin
            lo_b, hi_b = lo - margin, hi + margin
            if ptypes.is_integer_dtype(s):
                lo_b, hi_b = math.floor(lo_b), math.ceil(hi_b)
            else:
                lo_b, hi_b = _round_sig(lo_b, floor=True), _round_sig(hi_b, floor=False)
            exps.append(
                {"type": "expect_column_values_to_be_between",
                 "kwargs": {"column": c, "min_value": lo_b, "max_value": hi_b, "mostly": mostly},
                 "severity": "critical", "meta": {"reference_min": lo, "reference_max": hi}}
            )  # fmt: skip
        elif not ptypes.is_datetime64_any_dtype(s):
            values = non_null.unique()
            if len(values) <= max_categories:
                value_set = sorted((_native(v) for v in values), key=lambda v: (str(type(v)), v))
                exps.append(
                    {"type": "expect_column_values_to_be_in_set",
                     "kwargs": {"column": c, "value_set": value_set, "mostly": mostly},
                     "severity": "warning"}
                )  # fmt: skip
    meta = {"generated_by": "airflow_mlops.core.quality.suggest_suite", "rows": int(len(df))}
    if reference:
        meta["reference"] = reference
    return {"name": name, "meta": meta, "expectations": exps}


def _native(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _round_sig(value: float, floor: bool, digits: int = 4) -> float:
    """Round outward to ``digits`` significant digits, so bounds read well and never shrink."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(value))))
    return (math.floor(value * scale) if floor else math.ceil(value * scale)) / scale


def write_suite(suite: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Write a suite dict as JSON, or YAML for ``.yaml``/``.yml``; returns the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.lower().endswith(SUITE_SUFFIXES_YAML):
        import yaml

        text = yaml.safe_dump(dict(suite), sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(suite, indent=2, default=str) + "\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def generate_suite(
    df_or_uri: pd.DataFrame | str | os.PathLike, path: str | os.PathLike | None = None, **options: Any
) -> dict[str, Any]:
    """Suggest a suite from a DataFrame or a data URI (parquet/CSV), optionally writing it to ``path``.

    ``options`` go to :func:`suggest_suite`.
    """
    reference = None
    if isinstance(df_or_uri, (str, os.PathLike)):
        from airflow_mlops.core.data import read_table

        reference = os.fspath(df_or_uri)
        df = read_table(reference)
    else:
        df = df_or_uri
    if "name" not in options and path is not None:
        options["name"] = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    suite = suggest_suite(df, reference=reference, **options)
    if path is not None:
        write_suite(suite, path)
    return suite


# --------------------------------------------------------------------------------------------
# Validation without Airflow (CLI, bench)


def validate_table(
    data: str,
    suite: str | Sequence[Mapping] | Mapping,
    *,
    fail_on: str = "critical",
    result_format: str | dict = "SUMMARY",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load, check and validate ``data`` against ``suite``; returns ``(summary, full_result)``."""
    from airflow_mlops.core.data import read_table

    loaded = load_suite(suite)
    compiled = compile_suite(loaded)
    df = read_table(data)
    check_columns(compiled, list(df.columns), data)
    result = run_validation(df, compiled, result_format)
    return summarize(result, fail_on=fail_on, row_count=len(df), data=data, suite=loaded.source), result


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m airflow_mlops.core.quality", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("suggest", help="write a starter suite that describes a reference dataset")
    p.add_argument("data", help="parquet/CSV file or folder of parts (local path or fsspec URL)")
    p.add_argument("-o", "--output", required=True, help="suite file to write (.json, .yaml or .yml)")
    p.add_argument("--name", help="suite name (default: the output file's stem)")
    p.add_argument("--max-categories", type=int, default=20)
    p.add_argument("--range-margin", type=float, default=0.1)
    p.add_argument("--mostly", type=float, default=0.99)
    c = sub.add_parser("check", help="validate data against a suite and print the verdict")
    c.add_argument("data")
    c.add_argument("suite")
    c.add_argument("--fail-on", choices=FAIL_ON, default="critical")
    c.add_argument("--html", help="also write the HTML report here")
    args = parser.parse_args(argv)
    from airflow_mlops.core.data import DataReadError

    try:
        if args.command == "suggest":
            options = {
                "max_categories": args.max_categories,
                "range_margin": args.range_margin,
                "mostly": args.mostly,
            }
            if args.name:
                options["name"] = args.name
            suite = generate_suite(args.data, args.output, **options)
            print(f"wrote {len(suite['expectations'])} expectations to {args.output}")
            return 0
        summary, result = validate_table(args.data, args.suite, fail_on=args.fail_on)
        if args.html:
            with open(args.html, "w", encoding="utf-8") as fh:
                fh.write(render_html(summary, result))
            summary["report_uri"] = os.path.abspath(args.html)
        print(failure_message(summary))
        return 0 if summary["success"] else 1
    except (SuiteError, MissingColumnError, DataReadError, ValueError) as err:
        print(f"error: {err}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
