"""Post-training quantization of an imported network onto cosim's grids.

:func:`calibrate` sets the ranges of a :class:`~cosim.train.scheme.Scheme` from calibration
samples, for a network whose float weights are given (``cosim import``):

1. **Activation ranges.** The float forward of the calibration samples gives every hidden
   layer's pre-activations ``z``; its range ``r_l`` is the MSE-optimal clip of ``relu(z)``
   on the ``a``-bit grid (:func:`~cosim.train.scheme.best_act_range`, 48 candidates from 1 %
   to 100 % of the largest value) or, with ``method="minmax"``, the naive range whose top
   code is the largest value. A Clip(0, m) activation (ReLU6) caps ``r_l`` so that its top
   code is ``m``.
2. **Gauge.** A ReLU network is positively homogeneous: multiplying a hidden layer's weights
   and bias by ``c_l = hi / r_l`` and the next layer's weights by ``1 / c_l`` leaves the
   function unchanged (max and average pooling, flatten and the clip commute with it). Every
   hidden layer is rescaled so that its activation range is the scheme's ``hi``: the global
   scheme's single X/Y grid then fits every layer, and for per-layer grids (each layer its
   own ``w_max``) the activation range is a gauge anyway, so nothing is lost.
3. **Weight ranges.** ``w_max`` minimizes the quantization error of the weights
   (:func:`~cosim.train.scheme.best_weight_range`): one shared value over every hidden layer's
   weights for ``global`` (the head shares it, as in training), one per layer for
   ``per-layer``; with ``method="minmax"`` the largest magnitude. Bias grids follow
   (``step_b = u * hi_in``); biases beyond the bias range are clipped and counted.

The calibration uses the float network's activations (not those of the already quantized
earlier layers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.train.layers import LayerQuant
from cosim.train.network import Network
from cosim.train.scheme import Scheme, best_act_range, best_weight_range

METHODS = ("mse", "minmax")


def act_range(z: np.ndarray, bits: int, method: str) -> float:
    """The activation range ``hi`` of pre-activations ``z`` on a ``bits``-bit grid."""
    if method == "mse":
        return best_act_range(z, bits)
    top = float(np.max(z, initial=0.0))
    return top * (1 << bits) / ((1 << bits) - 1)  # the top code is the largest value


def weight_range(w: np.ndarray, bits: int, method: str) -> float:
    """The weight range ``w_max`` of weights ``w`` on a ``bits``-bit grid."""
    if method == "mse":
        return best_weight_range(w, bits)
    return float(np.abs(w).max(initial=0.0))


def calibrate(
    net: Network,
    scheme: Scheme,
    x_cal: np.ndarray,
    caps: list[float | None],
    method: str = "mse",
) -> dict[str, Any]:
    """Rescale ``net`` (gauge) and set ``scheme``'s ranges from float inputs ``x_cal``.

    Parameters
    ----------
    net
        The imported network (float weights); its hidden layers are rescaled in place.
    scheme
        A ``global`` or ``per-layer`` scheme of ``net``; ``scheme.hi_target`` is the range
        every hidden activation is rescaled to.
    x_cal
        Calibration inputs as the float network takes them (``x01 * hi``, dataset layout).
    caps
        The clip bound of every hidden activation (None: plain ReLU).
    method
        ``"mse"`` (MSE-optimal ranges) or ``"minmax"``.

    Returns
    -------
    dict
        ``act_ranges`` (each hidden layer's range in the graph's units), ``w_max``,
        ``clipped_biases`` (biases beyond their grid's range).
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: choose one of {METHODS}")
    for lay in net.weight_layers:
        lay.q = LayerQuant()
    hidden = net.hidden
    ranges: list[float] = []
    acts = net.acts
    outs = net.forward_collect(x_cal)
    for li, act in enumerate(acts):
        z = outs[net.layers.index(act)]
        r = act_range(z, scheme.a_bits, method)
        cap = caps[li] if li < len(caps) else None
        if cap is not None:
            r = min(r, cap * (1 << scheme.a_bits) / ((1 << scheme.a_bits) - 1))
        ranges.append(r if r > 0 else 1.0)  # a dead layer: any range
    hi = scheme.hi_target
    prev = 1.0
    for li, lay in enumerate(net.weight_layers):
        c = hi / ranges[li] if li < len(hidden) else 1.0
        lay.params["W"] *= np.float32(c / prev)
        lay.params["b"] *= np.float32(c)
        prev = c
    n_w = len(net.weight_layers)
    scheme.hi_x[:] = hi
    scheme.hi_y[:] = hi
    if scheme.name == "global":
        pool = [lay.params["W"].ravel() for lay in hidden] or [net.head.params["W"].ravel()]
        w_max = weight_range(np.concatenate(pool), scheme.w_bits, method)
        scheme.w_max[:] = w_max if w_max > 0 else scheme.w_max_target
    else:
        for li, lay in enumerate(net.weight_layers):
            w = weight_range(lay.params["W"], scheme.w_bits, method)
            scheme.w_max[li] = w if w > 0 else scheme.w_max_target
    scheme.apply(None)
    clipped = 0
    for li, lay in enumerate(net.weight_layers):
        _, _, _, b_grid = scheme.grids(li)
        clipped += int(np.sum(np.abs(lay.params["b"]) > b_grid.b_max))
    del n_w
    return {
        "method": method,
        "act_ranges": ranges,
        "w_max": scheme.w_max.tolist(),
        "hi": hi,
        "clipped_biases": clipped,
    }
