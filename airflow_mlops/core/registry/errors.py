"""What can go wrong with a move, by what a retry can do about it.

The hook maps these to the package's Airflow exceptions: a conflict or a bad/missing input fails
the task at once (a retry cannot help); a busy or lost lock is worth a retry.
"""

from __future__ import annotations


class RegistryConflict(RuntimeError):
    """The alias is not where the decision to move it assumed (compare-and-set lost), or a
    writer that ignores the lock moved it: a retry of the same decision cannot help."""


class RegistryStateError(ValueError):
    """The registry does not hold what the request refers to (no version, no history, a model
    in the lock's place that is not a lock ...)."""


class RegistryInputError(RegistryStateError):
    """A setting of the move is invalid; raised before anything is read or written. The message
    starts with the setting's name."""


class RegistryBusy(RuntimeError):
    """The lock could not be taken within ``lock_timeout``, or the lease on it ran out before the
    move finished (a very slow registry). Nothing inconsistent is left behind; a retry recovers."""
