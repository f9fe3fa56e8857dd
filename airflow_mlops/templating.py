"""Templated operator arguments: telling a template from a value, and reading JSON objects.

A dict argument rendered from Jinja (``"{{ params.backend_config | tojson }}"``) arrives as a
string; :func:`json_object_arg` turns either form into a dict, or fails naming the argument.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_mlops.exceptions import DataInputError


def is_templated(value: Any) -> bool:
    """True when ``value`` is a string Airflow will render (holds ``{{`` or ``{%``).

    ``__init__`` checks that need the final value skip templated arguments; ``execute`` sees them
    rendered.
    """
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def json_object_arg(name: str, value: Any) -> dict[str, Any]:
    """``value`` as a dict: None or "" is empty; a string must be a JSON object.

    :raises DataInputError: naming ``name`` when the value is not a JSON object.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise DataInputError(f"{name} is not valid JSON: {err}: {value!r}") from err
    if not isinstance(value, dict):
        raise DataInputError(f"{name} must be a JSON object, got {type(value).__name__}: {value!r}")
    return value
