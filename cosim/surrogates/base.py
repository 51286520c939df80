"""The contract every surrogate follows, and helpers for storing them.

A surrogate's ``to_dict()`` returns JSON-able values and NumPy arrays; the library writer
moves every array into ``arrays.npz`` and leaves a reference in ``library.json``.
``from_dict()`` receives the same structure with the arrays restored.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from cosim.errors import LibraryError


@runtime_checkable
class Surrogate(Protocol):
    """What the library and the engine rely on."""

    kind: str

    def to_dict(self) -> dict[str, Any]: ...


class NotFittedError(RuntimeError):
    """A fitter was used before ``fit`` was called."""


def check_fitted(obj: object, attr: str) -> None:
    """Raise :class:`NotFittedError` unless ``obj`` has the learned attribute ``attr``."""
    if not hasattr(obj, attr):
        raise NotFittedError(f"{type(obj).__name__} is not fitted yet; call fit(X, y) first")


def require_keys(d: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    """Raise :class:`LibraryError` naming the first key of ``keys`` missing from ``d``."""
    missing = [k for k in keys if k not in d]
    if missing:
        raise LibraryError(f"{what} in the surrogate library lacks '{missing[0]}'")


def as_float_array(x: Any, what: str) -> np.ndarray:
    """Convert a stored value to a float array, or raise a :class:`LibraryError`."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise LibraryError(f"{what} in the surrogate library is not numeric") from None
    if not np.all(np.isfinite(arr)):
        raise LibraryError(f"{what} in the surrogate library holds NaN or inf")
    return arr
