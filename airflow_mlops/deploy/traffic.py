"""What the endpoint targets share, with no cloud SDK: the names they give the resources of a
version, and the mapping between a :class:`~airflow_mlops.core.canary.Traffic` and an endpoint's
weights (SageMaker variant weights, a Vertex AI traffic split, an Azure ML traffic dict).

Every endpoint resource of a version is named ``<prefix>-v<version>`` (a SageMaker model and
production variant, a Vertex AI model and deployed model, an Azure ML online deployment), so what
an endpoint serves can be read back from it (:func:`airflow_mlops.deploy.base.version_of`)
without any state of ours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.canary import Traffic
from airflow_mlops.deploy.base import version_of
from airflow_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    import logging

# room left after the prefix for "-v<version>" (a registry version has at most 7 digits here)
_VERSION_ROOM = 9
_PREFIX = re.compile(r"[a-z](-?[a-z0-9])*")


def name_prefix(config: Mapping[str, Any], model_name: str, limit: int) -> str:
    """The prefix of every resource name: ``target_config['name_prefix']``, else the model name
    made safe (lower-case letters, digits and single hyphens, starting with a letter) and short
    enough that ``<prefix>-v<version>`` stays within ``limit`` characters.

    :raises ValueError: a ``name_prefix`` that is not such a name, naming the setting.
    """
    room = limit - _VERSION_ROOM
    given = config.get("name_prefix")
    if given is not None:
        if not (isinstance(given, str) and _PREFIX.fullmatch(given) and len(given) <= room):
            raise ValueError(
                f"target_config['name_prefix']: {given!r} must be lower-case letters, digits and single "
                f"hyphens, start with a letter and have at most {room} characters"
            )
        return given
    slug = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]", "-", model_name.lower())).strip("-")
    if not slug[:1].isalpha():
        slug = "m-" + slug if slug else "model"
    return slug[:room].rstrip("-")


def resource_name(prefix: str, version: str) -> str:
    """``<prefix>-v<version>``: the name of every endpoint resource of one version."""
    return f"{prefix}-v{version}"


def versions_by_name(names: Any, prefix: str) -> dict[str, str]:
    """``{name: version}`` of the names that are ours (``<prefix>-v<version>``); others are left out."""
    found = {}
    for name in names:
        version = version_of(name, prefix)
        if version is not None:
            found[str(name)] = version
    return found


def traffic_versions(traffic: Traffic) -> list[str]:
    """The versions an endpoint must host for ``traffic``: the control and the canary, even at a
    share of 0 (a canary is deployed before it takes traffic)."""
    return [v for v in dict.fromkeys((traffic.control, traffic.canary)) if v is not None]


def whole_percents(traffic: Traffic) -> dict[str, int]:
    """``{version: percent}`` in whole percents that sum to 100 (Vertex AI and Azure ML take only
    whole percents): the largest remainders round up, a tie goes to the control (the safe side),
    and a version with any share keeps at least 1 %."""
    weights = traffic.weights()
    if not weights:
        return {}
    order = [v for v in (traffic.control, traffic.canary) if v in weights]
    floors = {v: math.floor(weights[v]) for v in order}
    left = 100 - sum(floors.values())
    by_remainder = sorted(order, key=lambda v: (-(weights[v] - floors[v]), order.index(v)))
    for v in by_remainder[:left]:
        floors[v] += 1
    for v in order:  # a canary at 0.3 % still takes traffic: 1 %, taken from the largest
        if floors[v] == 0:
            largest = max(order, key=lambda u: floors[u])
            floors[largest] -= 1
            floors[v] = 1
    return floors


def traffic_of(weights: Mapping[str, float], where: str) -> Traffic:
    """The :class:`Traffic` an endpoint serves, from ``{version: weight}`` (weights relative, as
    SageMaker's are; zero weights ignored). With two versions the older one is called the control
    (an endpoint does not know which is the canary; :meth:`Traffic.weights` compares the same).

    :raises MlopsError: more than two versions take traffic, naming ``where``.
    """
    serving = {v: float(w) for v, w in weights.items() if w and float(w) > 0}
    if not serving:
        return Traffic(None)
    if len(serving) > 2:
        raise MlopsError(
            f"{where} sends traffic to {len(serving)} versions {serving}; a canary has two at most"
        )
    if len(serving) == 1:
        return Traffic(next(iter(serving)))
    control, canary = sorted(serving, key=_version_key)
    share = round(serving[canary] * 100.0 / sum(serving.values()), 6)
    return Traffic(control, canary, share)


def _version_key(version: str) -> tuple[int, int, str]:
    return (0, int(version), "") if str(version).isdigit() else (1, 0, str(version))


def change_in_turn(
    changes: list[tuple[str, Callable[[], Any]]], log: logging.Logger, where: str, wanted: list[str]
) -> None:
    """Make an endpoint's changes (``(what, start)``: ``start()`` returns a long-running operation
    or poller) one at a time, as the endpoint takes them: each is waited for (``result()``) before
    the next starts, but the last one, which ``ready()`` waits for in the triggerer."""
    if not changes:
        log.info("%s already hosts v%s: nothing to prepare", where, ", v".join(wanted))
        return
    for i, (what, start) in enumerate(changes):
        log.info("%s: %s", where, what)
        operation = start()
        if i < len(changes) - 1:
            operation.result()
