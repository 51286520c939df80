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
   own ``w_max``) the activation range is a gauge anyway, so nothing is lost. The global
   scheme's ``hi`` itself is free too (the hidden weights do not depend on it, the head's
   weights scale as ``1 / hi``): it is chosen so that the head's best weight range is the
   shared ``w_max``, which the head must share.
3. **Weight ranges.** ``w_max`` minimizes the quantization error of the weights
   (:func:`~cosim.train.scheme.best_weight_range`): one shared value over every hidden layer's
   weights for ``global`` (the head shares it, as in training: its weights and bias, so
   its logits, are scaled to fit, which leaves the arg-max unchanged), one per layer for
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


def _weight_error(w: np.ndarray, bits: int, cands: np.ndarray) -> np.ndarray:
    """Relative quantization error ``sum (w - Q(w; c))**2 / sum w**2`` of bipolar weights
    ``w`` for every candidate range ``c``."""
    w = np.asarray(w, dtype=np.float64).ravel()
    if w.size > 20_000:
        w = w[:: w.size // 20_000]
    n_max = (1 << bits) - 1
    u = cands[:, None] / n_max
    n = np.clip(2.0 * np.floor(w[None, :] / (2.0 * u)) + 1.0, -n_max, n_max)
    return ((w[None, :] - n * u) ** 2).sum(axis=1) / max(float((w * w).sum()), 1e-300)


def shared_weight_range(ws: list[np.ndarray], bits: int) -> float:
    """The one ``w_max`` minimizing the sum over layers of each layer's *relative* weight
    quantization error (every layer counts alike, whatever its number of weights)."""
    top = max(float(np.abs(w).max(initial=0.0)) for w in ws)
    if top == 0.0:
        return 0.0
    cands = top * np.geomspace(0.01, 1.0, 96)
    err = sum(_weight_error(w, bits, cands) for w in ws)
    return float(cands[int(np.argmin(err))])


def _act_error(y: np.ndarray, bits: int, cands: np.ndarray) -> np.ndarray:
    """Relative quantization error ``sum (y - Q(y; R))**2 / sum y**2`` of non-negative
    activations ``y`` on the ``bits``-bit grid of every candidate range ``R`` (the grid of
    :class:`cosim.quant.ActGrid`: step ``R / 2**bits``, codes ``0 .. 2**bits - 1``)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size > 20_000:
        y = y[:: y.size // 20_000]
    step = cands[:, None] / (1 << bits)
    k = np.clip(np.floor(y[None, :] / step + 0.5), 0, (1 << bits) - 1)
    return ((y[None, :] - k * step) ** 2).sum(axis=1) / max(float((y * y).sum()), 1e-300)


def shared_act_range(ys: list[np.ndarray], bits: int, extra: list[float] | None = None) -> float:
    """The one activation range ``R`` minimizing the sum over tensors of each tensor's
    *relative* quantization error on the ``bits``-bit grid ``[0, R]``.

    ``ys`` are the tensors' non-negative values (after their ReLU or clip; an all-zero
    tensor does not count). The candidates are 96 ranges from 1 % to 100 % of the one whose
    top code's rounding boundary is the largest value (no clipping), plus ``extra`` (so the
    result's error is at most that of any range in ``extra``). Returns 0 if every tensor
    is zero."""
    live = [y for y in ys if float(np.max(y, initial=0.0)) > 0.0]
    if not live:
        return 0.0
    top = max(float(np.max(y)) for y in live)
    cands = top * np.geomspace(0.01, 1.0, 96) * (1 << bits) / ((1 << bits) - 0.5)
    cands = np.concatenate([cands, [r for r in extra or [] if r > 0]])
    err = sum(_act_error(y, bits, cands) for y in live)
    return float(cands[int(np.argmin(err))])


def _shared(ws: list[np.ndarray], bits: int, method: str) -> float:
    if method == "mse":
        return shared_weight_range(ws, bits)
    return max(float(np.abs(w).max(initial=0.0)) for w in ws)


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
        A ``global`` or ``per-layer`` scheme of ``net``, whose ``hi_target`` is the input
        range the network was built for; every hidden activation is rescaled to the range
        ``hi`` (per-layer: that one; global: chosen, see the module docstring), which
        becomes ``hi_target``.
    x_cal
        Calibration inputs as the float network takes them (``x01 * hi``, dataset layout).
    caps
        The clip bound of every hidden activation (None: plain ReLU).
    method
        ``"mse"`` (MSE-optimal ranges) or ``"minmax"``.

    Returns
    -------
    dict
        ``act_ranges`` (each hidden layer's range in the graph's units), ``w_max``, ``hi``,
        ``clipped_biases`` (biases beyond their grid's range), ``head_scale`` (the factor
        on the logits, 1 unless ``hi`` hit its bounds).
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: choose one of {METHODS}")
    for lay in net.weight_layers:
        lay.q = LayerQuant()
    hidden = net.hidden
    head_scale = 1.0
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
    built = scheme.hi_target  # the network was built for inputs x01 * built
    hi = built
    if scheme.name == "global" and hidden:
        # after the gauge the hidden weights do not depend on hi (W_0 * built / r_0,
        # W_l * r_{l-1} / r_l) and the head's scale as r_last / hi: choose the shared hi so
        # that the head's own best range is the shared w_max (no rescaled logits)
        scaled = [
            lay.params["W"].astype(np.float64) * (built if li == 0 else ranges[li - 1])
            / ranges[li]
            for li, lay in enumerate(hidden)
        ]  # fmt: skip
        w_hid = _shared(scaled, scheme.w_bits, method)
        w_head = weight_range(net.head.params["W"], scheme.w_bits, method)
        if w_hid > 0 and w_head > 0:
            hi = float(np.clip(ranges[-1] * w_head / w_hid, 0.01, 1000.0))
    prev = hi / built
    for li, lay in enumerate(net.weight_layers):
        c = hi / ranges[li] if li < len(hidden) else 1.0
        lay.params["W"] *= np.float32(c / prev)
        lay.params["b"] *= np.float32(c)
        prev = c
    scheme.hi_target = hi
    scheme.hi_x[:] = hi
    scheme.hi_y[:] = hi
    if scheme.name == "global":
        pool = [lay.params["W"] for lay in hidden] or [net.head.params["W"]]
        w_max = _shared(pool, scheme.w_bits, method)
        w_max = w_max if w_max > 0 else scheme.w_max_target
        scheme.w_max[:] = w_max
        # the head shares w_max; where hi was clipped, scale its logits to fit it
        w_head = weight_range(net.head.params["W"], scheme.w_bits, method)
        if w_head > 0 and hidden:
            head_scale = w_max / w_head
            net.head.params["W"] *= np.float32(head_scale)
            net.head.params["b"] *= np.float32(head_scale)
    else:
        for li, lay in enumerate(net.weight_layers):
            w = weight_range(lay.params["W"], scheme.w_bits, method)
            scheme.w_max[li] = w if w > 0 else scheme.w_max_target
    scheme.apply(None)
    clipped = 0
    for li, lay in enumerate(net.weight_layers):
        _, _, _, b_grid = scheme.grids(li)
        clipped += int(np.sum(np.abs(lay.params["b"]) > b_grid.b_max))
    return {
        "method": method,
        "act_ranges": ranges,
        "w_max": scheme.w_max.tolist(),
        "hi": hi,
        "clipped_biases": clipped,
        "head_scale": head_scale,
    }
