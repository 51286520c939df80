"""ADC transfer metrics: the ideal transfer, INL and DNL from code transition voltages.

Transfer convention (shared with :mod:`cosim.quant`): the ideal code is
``clip(floor(v / LSB + 1/2), 0, 2**N - 1)``, ``LSB = v_ref_v / 2**N``.

Examples
--------
>>> ideal_codes([0.0624, 0.0625, 0.99], 3, 1.0).tolist()
[0, 1, 7]
>>> inl_dnl_from_thresholds(np.array([0.0625, 0.1875, 0.3125]), 2, 0.5)["max_abs_dnl_lsb"]
0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ideal_codes(v: Any, bits: int, v_ref_v: float) -> np.ndarray:
    """The ideal transfer ``clip(floor(v / LSB + 1/2), 0, 2**bits - 1)`` (int64).

    Examples
    --------
    >>> ideal_codes([0.0624, 0.0625, 0.99], 3, 1.0).tolist()
    [0, 1, 7]
    """
    lsb = v_ref_v / 2**bits
    x = np.floor(np.asarray(v, dtype=float) / lsb + 0.5)
    return np.clip(x, 0, 2**bits - 1).astype(np.int64)


def inl_dnl_from_thresholds(t: np.ndarray, bits: int, v_ref_v: float) -> dict[str, Any]:
    """INL and DNL in LSB of the transitions ``t`` (``2**bits - 1`` voltages, ascending);
    the keys of :meth:`cosim.surrogates.adc.SarAdcModel.inl_dnl`."""
    lsb = v_ref_v / 2**bits
    k = np.arange(1, 2**bits)
    inl = (t - (k - 0.5) * lsb) / lsb
    dnl = np.diff(t) / lsb - 1.0 if t.size > 1 else np.zeros(0)
    # endpoint INL: the straight line through the first and last transitions removed
    if t.size > 1:
        line = t[0] + (t[-1] - t[0]) * (k - 1) / (k[-1] - 1)
        inl_ep = (t - line) / ((t[-1] - t[0]) / (k[-1] - 1))
    else:
        inl_ep = np.zeros(1)
    return {
        "inl_lsb": inl,
        "dnl_lsb": dnl,
        "inl_endpoint_lsb": inl_ep,
        "max_abs_inl_lsb": float(np.max(np.abs(inl))),
        "max_abs_dnl_lsb": float(np.max(np.abs(dnl))) if dnl.size else 0.0,
        "missing_codes": int(np.sum(dnl <= -1.0 + 1e-12)),
        "offset_lsb": float(inl[0]),
        "gain_error_lsb": float(inl[-1] - inl[0]),
    }
