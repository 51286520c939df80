"""Argument checks shared by the ADC modules: a resolution and skipped-MSB-cycle counts.

Examples
--------
>>> check_bits(3, "bits"), skip_array([0, 2], 3).tolist()
(3, [0, 2])
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_BITS = 1
MAX_BITS = 8


def check_bits(bits: Any, what: str, max_bits: int = MAX_BITS, of: str = "") -> int:
    """``bits`` as an int in ``MIN_BITS .. max_bits`` (the SAR's by default), else a
    ValueError naming ``what`` (and ending in ``of``, e.g. " for a flash ADC")."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise ValueError(f"{what} must be an integer, got {bits!r}")
    if not MIN_BITS <= int(bits) <= max_bits:
        raise ValueError(f"{what} = {bits} is out of range [{MIN_BITS}, {max_bits}]{of}")
    return int(bits)


def skip_array(skip: Any, bits: int) -> np.ndarray:
    k = np.asarray(skip)
    if k.dtype.kind not in "iub":
        if not np.all(np.isfinite(k)) or np.any(k != np.round(k)):
            raise ValueError("skip must hold whole numbers of skipped MSB cycles")
    k = k.astype(np.int64)
    if np.any(k < 0) or np.any(k > bits - 1):
        raise ValueError(f"skip must lie in 0..{bits - 1} for a {bits}-bit ADC")
    return k
