"""Integer arithmetic of one crossbar layer: requantization scale and rounding, average
pooling on codes, input codes of data in ``[0, 1]``."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.quant.grids import ActGrid, WeightGrid, check_bits


def layer_scale(w_grid: WeightGrid, in_grid: ActGrid, out_grid: ActGrid) -> float:
    """Requantization scale of a hidden layer: ``u * step_in / step_out`` (this exact order).

    Examples
    --------
    >>> layer_scale(WeightGrid(0.25, 4), ActGrid(2.0, 8), ActGrid(2.0, 3))
    0.0005208333333333333
    """
    return w_grid.unit * in_grid.step / out_grid.step


def requantize(acc: Any, scale: float, bits: int, dtype: Any = np.int64) -> np.ndarray:
    """Output codes of a hidden layer from its integer accumulator.

    ``clip(floor(acc * scale + 1/2), 0, 2**bits - 1)``, computed in float64 as two rounded
    operations (multiply, then add 1/2). The training forward and the analog engine both
    call this function, so their codes are identical.

    Parameters
    ----------
    acc
        Integer accumulators (int64, or float arrays holding exact integers below 2**53).
    scale
        :func:`layer_scale` of the layer.
    bits
        Output precision a.
    dtype
        dtype of the result.

    Examples
    --------
    >>> requantize(np.array([-5, 0, 29, 30, 10_000]), 1 / 60, 3).tolist()
    [0, 0, 0, 1, 7]
    """
    bits = check_bits(bits, "activation bits")
    t = np.multiply(np.asarray(acc, dtype=np.float64), np.float64(scale))
    t += 0.5
    np.floor(t, out=t)
    np.clip(t, 0, (1 << bits) - 1, out=t)
    return t.astype(dtype)


def add_ratio(in_grid: ActGrid, out_grid: ActGrid) -> float:
    """Rescale factor of a residual Add's operand: ``step_in / step_out`` (1.0 on one grid).

    Examples
    --------
    >>> add_ratio(ActGrid(2.0, 3), ActGrid(4.0, 3))
    0.5
    """
    return in_grid.step / out_grid.step


def residual_add(
    k_a: Any, r_a: float, k_b: Any, r_b: float, bits: int, dtype: Any = np.int64
) -> np.ndarray:
    """Output codes of a residual Add (digital, between tiles) of two code arrays.

    ``clip(floor(k_a * r_a + k_b * r_b + 1/2), 0, 2**bits - 1)``, computed in float64 as
    four rounded operations in this order (multiply ``a``, multiply-add ``b``, add 1/2;
    ``r = step_in / step_out`` from :func:`add_ratio`): the style of :func:`requantize`.
    Where both operands lie on the output grid (``r_a = r_b = 1``, the global scheme) every
    operation is exact and the result is the integer ``clip(k_a + k_b, 0, 2**bits - 1)``:
    the sum of the codes, clipped to the grid (the ReLU after the Add is the clip at 0).
    ``k_a`` may be signed (a signed operand given as the difference of two ADC codes).

    Examples
    --------
    >>> residual_add(np.array([0, 3, 5, -4]), 1.0, np.array([1, 2, 4, 1]), 1.0, 3).tolist()
    [1, 5, 7, 0]
    >>> residual_add(np.array([3]), 0.5, np.array([3]), 1.0, 3).tolist()
    [5]
    """
    bits = check_bits(bits, "activation bits")
    t = np.multiply(np.asarray(k_a, dtype=np.float64), np.float64(r_a))
    t += np.multiply(np.asarray(k_b, dtype=np.float64), np.float64(r_b))
    t += 0.5
    np.floor(t, out=t)
    np.clip(t, 0, (1 << bits) - 1, out=t)
    return t.astype(dtype)


def avgpool_round(sums: Any, n: int) -> np.ndarray:
    """Average-pool re-quantization of code sums: ``(sum + n // 2) // n`` (round half up).

    Works on integer arrays and on float arrays holding exact integers (same result).

    Examples
    --------
    >>> avgpool_round(np.array([0, 1, 2, 5, 6]), 4).tolist()
    [0, 0, 1, 1, 2]
    """
    sums = np.asarray(sums)
    if sums.dtype.kind in "iu" and n & (n - 1) == 0:  # a power of two: an exact shift
        return (sums + (n // 2)) >> (n.bit_length() - 1)
    return np.floor_divide(sums + (n // 2), n)


def input_codes(x01: Any, bits: int, dtype: Any = np.int64) -> np.ndarray:
    """Input DAC codes of data scaled to ``[0, 1]``: ``clip(floor(x01 * 2**bits + 1/2), ...)``.

    Examples
    --------
    >>> input_codes([0.0, 0.5, 1.0], 8).tolist()
    [0, 128, 255]
    """
    bits = check_bits(bits, "input bits")
    t = np.asarray(x01, dtype=np.float64) * float(1 << bits)
    t += 0.5
    np.floor(t, out=t)
    np.clip(t, 0, (1 << bits) - 1, out=t)
    return t.astype(dtype)
