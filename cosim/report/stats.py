"""Intervals over training seeds: what the study claims about a small effect.

An experiment that repeats a model over the plan's seeds reports, per quantity, the mean and
a two-sided Student-t confidence interval over the seeds (each seed's value may itself be a
mean over chips: the seeds are the independent units, the chips of one seed are not
independent of its training). A difference between two designs is paired by seed (the same
seed's data order and initialization), so its interval is that of the per-seed differences.
A trend or difference is *supported* only when its interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: Confidence level of every interval in the report.
CONFIDENCE = 0.95
#: Display bounds of a relative change (:func:`fmt`): nothing falls by more than 100 %.
FALL: tuple[float | None, float | None] = (-1.0, None)


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean and Student-t interval of ``values`` (one per seed).

    Returns ``{"mean", "low", "high", "half_width", "n", "values"}``; with one value the
    interval is undefined (``low``, ``high`` and ``half_width`` are ``None``). NaN values
    (an undefined per-seed quantity) are left out and counted in ``"nan"``.

    Examples
    --------
    >>> iv = interval([0.80, 0.82, 0.84])
    >>> round(iv["mean"], 3), round(iv["half_width"], 4)
    (0.82, 0.0497)
    >>> interval([0.5])["half_width"] is None
    True
    """
    from scipy.stats import t

    vals = [float(v) for v in values]
    finite = [v for v in vals if math.isfinite(v)]
    n = len(finite)
    if n == 0:
        return {"mean": float("nan"), "low": None, "high": None, "half_width": None,
                "n": 0, "values": vals, "nan": len(vals)}  # fmt: skip
    mean = sum(finite) / n
    half: float | None = None
    if n > 1:
        sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
        half = float(t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))
    return {
        "mean": mean,
        "low": None if half is None else mean - half,
        "high": None if half is None else mean + half,
        "half_width": half,
        "n": n,
        "values": vals,
        "nan": len(vals) - n,
    }


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Interval of the per-seed differences ``a - b`` (same seeds, same order).

    Examples
    --------
    >>> round(paired([0.85, 0.86, 0.84], [0.86, 0.88, 0.85])["mean"], 4)
    -0.0133
    """
    if len(a) != len(b):
        raise ValueError(f"paired needs one value per seed on both sides ({len(a)} vs {len(b)})")
    return interval([x - y for x, y in zip(a, b, strict=True)])


def supported(iv: dict[str, Any]) -> int:
    """+1 (interval above zero), -1 (below zero) or 0 (contains zero, or undefined)."""
    if iv.get("low") is None or iv.get("high") is None:
        return 0
    if iv["low"] > 0:
        return 1
    if iv["high"] < 0:
        return -1
    return 0


def fmt(
    iv: dict[str, Any],
    scale: float = 100.0,
    digits: int = 2,
    unit: str = "",
    bounds: tuple[float | None, float | None] | None = None,
) -> str:
    """``"84.63 ± 0.41"`` (mean ± half-width, times ``scale``), or the mean and "(1 seed)".

    ``bounds`` (in the values' own units): where the t-interval reaches past what the
    quantity can be (an accuracy above 100 %, a fall of more than 100 %), the interval is
    shown clipped, as ``"mean (low to high)"``; a fraction shown in percent (``unit``
    " %") is bounded to [0, 1] unless told otherwise.

    Examples
    --------
    >>> fmt(interval([0.80, 0.82, 0.84]), unit=" %")
    '82.00 ± 4.97 %'
    >>> fmt(interval([0.90, 0.99]), unit=" %")
    '94.50 (37.32 to 100.00) %'
    """
    n, dropped = iv.get("n", 0), iv.get("nan", 0)
    if n == 0 and dropped:  # every seed's value undefined: no number to show
        return f"n/a (undefined on all {dropped} seeds)"
    m = iv["mean"] * scale
    # seeds whose value was undefined are left out of the interval: say so beside it
    left_out = f" ({n} of {n + dropped} seeds)" if dropped else ""
    if iv.get("half_width") is None:
        if n == 1:
            return f"{m:.{digits}f}{unit} (1 seed" + (f" of {1 + dropped})" if dropped else ")")
        return f"{m:.{digits}f}{unit}"
    if bounds is None and unit.strip() == "%":
        bounds = (0.0, 1.0)
    lo_b, hi_b = bounds if bounds is not None else (None, None)
    low, high = iv["low"], iv["high"]
    if (lo_b is not None and low < lo_b) or (hi_b is not None and high > hi_b):
        low = low if lo_b is None else max(low, lo_b)
        high = high if hi_b is None else min(high, hi_b)
        return (
            f"{m:.{digits}f} ({low * scale:.{digits}f} to {high * scale:.{digits}f}){unit}"
            f"{left_out}"
        )
    return f"{m:.{digits}f} ± {iv['half_width'] * scale:.{digits}f}{unit}{left_out}"
