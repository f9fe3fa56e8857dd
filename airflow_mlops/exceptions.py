"""Exceptions raised by airflow-mlops.

Subclasses of ``AirflowFailException`` fail the task without retries: bad data, a rejected model
or a lost promotion race do not fix themselves on retry. Plain ``MlopsError`` propagates with
normal retry semantics (a server that was down may be back).
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class MlopsError(AirflowException):
    """Base class of every error raised by airflow-mlops."""


class DataInputError(MlopsError, AirflowFailException):
    """Input data or a configuration file cannot be used (missing, unreadable, empty, wrong columns)."""


class ForbiddenInputError(DataInputError):
    """A run asked for something the deployment does not let a run choose: a backend setting the
    trigger form may not set, a data location outside the allowed schemes and roots, a promotion
    without the approval it needs (docs/security.md)."""


class UnsafeModelError(MlopsError, AirflowFailException):
    """A stored model version is in a format whose loading could run code (pickle, cloudpickle,
    a pyfunc PythonModel, skops types the deployment does not trust); the message says how to
    re-register it safely."""


class MissingExtraError(MlopsError, AirflowFailException):
    """A feature needs an optional dependency group (``pip install airflow-mlops[<extra>]``)."""

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{extra}' extra ({missing} is not installed): "
            f"pip install 'airflow-mlops[{extra}]'"
        )


class DataQualityGateFailed(MlopsError, AirflowFailException):
    """Data failed the quality gate at or above the configured severity."""

    def __init__(self, message: str, summary: dict | None = None) -> None:
        self.summary = summary
        super().__init__(message)


class ModelRejected(MlopsError, AirflowFailException):
    """The candidate model lost against the champion or missed an absolute floor."""

    def __init__(self, message: str, record: dict | None = None) -> None:
        self.record = record
        super().__init__(message)


class PromotionConflict(MlopsError, AirflowFailException):
    """The alias moved since the decision to promote was made (compare-and-set failed)."""


class RegistryError(MlopsError, AirflowFailException):
    """The registry does not hold what the task refers to (unknown version, no history to roll back)."""


class TrainingJobFailed(MlopsError, AirflowFailException):
    """The training job failed; nothing was registered."""


def require_extra(module: str, feature: str, extra: str) -> None:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(feature, extra, module) from err
