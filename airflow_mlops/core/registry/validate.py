"""Checks of a move's settings, made before anything is read from or written to the registry.

Each check returns the normalised value or raises :class:`RegistryInputError` whose message starts
with the setting's name. The limits are MLflow's (tag keys 250 characters, tag values 100,000,
names 256 in its SQL stores), applied here so that a move never fails half-way on them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from airflow_mlops.core import tags
from airflow_mlops.core.registry.errors import RegistryInputError

NO_HOLDER = "none"
LOCK_SUFFIX = ".mlops-lock"
NAME_MAX = 256  # registered-model name column of MLflow's SQL stores
TAG_KEY_MAX = 250
TAG_VALUE_MAX = 100_000
REASON_MAX = 10_000
"""Longest ``reason`` a move accepts (characters): room for any text a person types, and the
history event that carries it stays far below MLflow's tag limit even when every character is
escaped in JSON."""

_VERSION = re.compile(r"^[0-9]+$")
_ALIAS = re.compile(r"^[\w\-]+$")
_RESERVED_ALIAS = re.compile(r"^(latest|[vV][0-9]+)$", re.IGNORECASE)
# the longest tag key an alias ends up in bounds its length
_ALIAS_KEYS = (
    tags.PROMOTED_PREVIOUS,
    tags.PROMOTED_REASON,
    tags.PROMOTED_FORCED,
    tags.ROLLBACK_FROM,
    tags.ROLLBACK_REASON,
    tags.HISTORY_PREFIX + "{alias}.000000000",
)
ALIAS_MAX = TAG_KEY_MAX - max(len(k.replace("{alias}", "")) for k in _ALIAS_KEYS)


def check_model_name(name: Any, alias: str) -> str:
    """A registered-model name MLflow accepts and whose lock name fits MLflow's name column."""
    text = "" if name is None else str(name)
    if not text.strip():
        raise RegistryInputError("model_name: empty; give the registered model's name")
    if "/" in text or ":" in text:
        raise RegistryInputError(f"model_name: {text!r} contains '/' or ':', which MLflow refuses in a name")
    lock = lock_name(text, alias)
    if len(lock) > NAME_MAX:
        raise RegistryInputError(
            f"model_name: {len(text)} characters is too long for the registry lock {lock[:40]!r}..., "
            f"whose name must fit in {NAME_MAX} characters (MLflow's SQL stores)"
        )
    return text


def lock_name(name: str, alias: str) -> str:
    return f"{name}{LOCK_SUFFIX}.{alias}"


def check_alias(alias: Any) -> str:
    text = "" if alias is None else str(alias).strip()
    if not _ALIAS.match(text):
        raise RegistryInputError(
            f"alias: {alias!r} is not an alias MLflow accepts (letters, digits, '_' and '-' only)"
        )
    if _RESERVED_ALIAS.match(text):
        raise RegistryInputError(f"alias: {text!r} is reserved by MLflow ('latest' and 'v<number>')")
    if len(text) > ALIAS_MAX:
        raise RegistryInputError(
            f"alias: {len(text)} characters; at most {ALIAS_MAX} fit in the history's tag keys"
        )
    return text


def check_version(value: Any, setting: str = "version") -> str:
    """A model version number as MLflow prints it (``"3"``); ``" 03 "`` and ``3`` are accepted."""
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    if not _VERSION.match(text) or int(text) < 1:
        raise RegistryInputError(
            f"{setting}: {value!r} is not a model version number (a positive integer such as '3')"
        )
    return str(int(text))


def optional_version(value: Any, setting: str) -> str | None:
    """None for "not given" (None, "", "none", "null"), else :func:`check_version`."""
    if value is None or str(value).strip().lower() in ("", "none", "null"):
        return None
    return check_version(value, setting)


def normalize_expected(expected: Any) -> str | None:
    """The expected holder of the alias for the compare-and-set: a version string, ``"none"``
    for "must have no holder yet" (also from "", "null"), or None for "do not check"."""
    if expected is None:
        return None
    text = str(expected).strip()
    if text == "" or text.lower() in ("none", "null"):
        return NO_HOLDER
    return check_version(text, "expected_current")


def check_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    text = str(reason)
    if len(text) > REASON_MAX:
        raise RegistryInputError(
            f"reason: {len(text):,} characters; at most {REASON_MAX:,} are recorded in the history "
            "(shorten it, or link to a longer write-up)"
        )
    return text


def check_event_fits(event_json: str) -> None:
    """The history event as it will be written fits in one MLflow tag value."""
    if len(event_json) > TAG_VALUE_MAX:
        raise RegistryInputError(
            f"reason: the history event would be {len(event_json):,} characters in JSON, over "
            f"MLflow's tag limit of {TAG_VALUE_MAX:,}; shorten the reason"
        )


def check_seconds(value: Any, setting: str, *, positive: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise RegistryInputError(f"{setting}: {value!r} must be a finite number of seconds, {bound}")
    return number


def check_origin(origin: Any) -> dict[str, Any]:
    """The task instance acting: JSON-serialisable strings (``map_index`` an int)."""
    if origin is None:
        return {}
    if not isinstance(origin, dict):
        raise RegistryInputError(f"origin: expected a dict of dag_id/run_id/task_id/user, got {origin!r}")
    index = origin.get("map_index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise RegistryInputError(f"origin: map_index must be an integer, got {index!r}")
    try:
        json.dumps(origin)
    except (TypeError, ValueError) as err:
        raise RegistryInputError(f"origin: not JSON-serialisable: {err}") from err
    return origin
