"""Suites: reading a GX suite (JSON/YAML file, suite dict or list of expectation dicts) with
per-expectation severities into a :class:`Suite`, and writing one back.

Structure only: whether GX knows an expectation type and accepts its kwargs is checked by
:func:`airflow_mlops.core.quality.gx.compile_suite`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.core.data import is_local

SEVERITIES = ("info", "warning", "critical")  # in increasing order
DEFAULT_SEVERITY = "critical"
SUITE_SUFFIXES_JSON = (".json",)
SUITE_SUFFIXES_YAML = (".yaml", ".yml")


class SuiteError(ValueError):
    """The suite cannot be used: unreadable file, bad structure, unknown type, bad kwargs."""


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


def find_suite_file(path: str, folders: Sequence[str]) -> str:
    """Where the suite file ``path`` is: ``path`` itself when it is a URL, absolute, or found from
    the working directory; else the first of ``folders/path`` that exists.

    :raises SuiteError: naming every place it looked.
    """
    if "://" in path or os.path.isabs(path) or os.path.exists(path):
        return path
    for folder in folders:
        candidate = os.path.join(folder, path)
        if os.path.exists(candidate):
            return candidate
    looked = [os.path.abspath(path), *(os.path.join(f, path) for f in folders)]
    raise SuiteError(f"suite file not found: {path} (looked in: {', '.join(looked)})")


def _read_text(source: str) -> str:
    try:
        if not is_local(source):
            import fsspec

            with fsspec.open(source, "rt", encoding="utf-8") as fh:
                return fh.read()
        with open(source.removeprefix("file://"), encoding="utf-8") as fh:
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
