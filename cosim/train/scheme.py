"""Quantization schemes: float, per-layer STE, global quantization, and fixed ranges.

Every weight layer l of a quantized network has a weight grid ``W_l = (w_max_l, b)``, an input
grid ``X_l = (hi_x_l, a)`` (``in_bits`` for the first layer), an output grid
``Y_l = (hi_y_l, a)`` (hidden layers; the head has none) and a bias grid ``B_l`` tied to them
(``step = u_l * hi_x_l``). Codes pass unchanged from an ADC to the next DAC, so ``Y_l`` and
``X_{l+1}`` have the same bits. docs/training.md gives the full formulation.

``per-layer`` (the standard STE baseline)
    Each layer has its own ``w_max_l`` and ``hi_y_l``, calibrated from that layer's own
    statistics by the control update below (one group per layer); ``X_{l+1} = Y_l``; the
    input grid keeps the target range. No extra loss terms.

``global`` (García-Redondo et al.)
    One set of grids for every hidden layer: X and Y share ``hi`` (also the input grid's
    range), W shares ``w_max`` (head included), B follows (``step_b = u * hi``), so every
    hidden layer has the same requantization scale and one DAC/ADC/TIA design serves all of
    them. With X and Y sharing ``hi`` no code depends on ``hi`` (the scale
    ``u * (hi / 2**a_in) / (hi / 2**a)`` does not), so ``hi`` is held at its target and the
    controlled global variable is ``w_max``: the weight resolution and the shared gain.
    Custom loss terms with an epoch-dependent strength pull every layer into the shared
    ranges.

``fixed`` (Bao et al. 2022's recipe)
    Fixed ranges, no control and no range loss: the input grid covers ``x01`` in ``[0, 1]``
    (``hi_x_0 = 1``), every hidden layer's Y (and so the next layer's X) is clipped at the
    configured ``hi``, every layer's W at ``+-w_max`` (the shadow weights themselves are
    clipped there after every step, :meth:`Scheme.clip_weights`), B follows. Unlike
    ``global``, the first layer's requantization scale ``u * (1 / 2**in_bits) / (hi / 2**a)``
    depends on ``hi``, so ``hi`` is a real clipping level (the clip-bound experiment of Bao
    et al., Fig. 2A, tests it). The model file records the scheme as ``fixed`` (general
    per-layer grids, dedicated periphery, like ``per-layer``).

Control (``w_max`` for the ``per-layer`` and ``global`` schemes, ``hi_y`` for per-layer)
    Every ``control_every`` steps while ``epoch < control_epochs``, per group (global: all
    hidden layers pooled; per-layer: each layer)::

        s_w = argmin_c  sum_i (w_i - Q_W(w_i; c, b))**2      the group's shadow weights, each
                                                              filter on its own grid (bipolar
                                                              or unipolar)
        s_y = argmin_h  sum_j (y_j - Q_Y(y_j; h, a))**2      y = relu(z), the layer's
                                                              pre-activations (per-layer only)
        w_max <- w_max + mu (s_w - w_max),   hi_y <- hi_y + mu (s_y - hi_y)     (mu = 0.2)

    an exponential moving average toward the range that minimizes the quantization error of
    everything the group holds (48 candidates from 1 % to 100 % of the largest magnitude).
    Afterwards the ranges are frozen, so the last epochs train on the grids the hardware
    will have. Ranges stay within [1/8, 8] x their targets.

Range loss terms (global only), with strength ``lam(e) = range_penalty * (e + 1) / E``::

    L_W = lam(e) * sum_l mean(relu(|W_l| - w_max)**2) / w_max**2
    L_B = lam(e) * sum_l mean(relu(|b_l| - b_max)**2) / b_max**2
    L_X = lam(e) * sum_l mean(relu(z_l - hi)**2) / hi**2          (hidden layers)

They penalize, ever more strongly, shadow weights and biases beyond the shared range (which
the STE no longer trains) and pre-activations that saturate the shared ADC range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.quant import (
    DEFAULT_HI,
    DEFAULT_W_MAX,
    ActGrid,
    BiasGrid,
    WeightGrid,
    default_bias_bits,
)
from cosim.train.layers import Add, AvgPool2D, LayerQuant
from cosim.train.network import Network

SCHEMES = ("float", "per-layer", "global", "fixed")
#: The input range of the ``fixed`` scheme's first layer: ``x01`` in ``[0, 1]``.
FIXED_INPUT_HI = 1.0
_CANDIDATES = np.geomspace(0.01, 1.0, 48)
_MU = 0.2


def best_weight_range(w: np.ndarray, bits: int, unipolar: np.ndarray | None = None) -> float:
    """The ``w_max`` minimizing the ``bits``-bit quantization error of weights ``w``.

    Weights flagged in ``unipolar`` (same shape as ``w``) are measured on the unipolar grid,
    the others on the bipolar grid.

    Examples
    --------
    >>> w = np.random.default_rng(0).standard_normal(10_000)
    >>> 2.0 < best_weight_range(w, 4) < 3.5
    True
    """
    w = np.asarray(w, dtype=np.float64).ravel()
    uni = None if unipolar is None else np.asarray(unipolar, dtype=bool).ravel()
    if w.size > 20_000:
        w = w[:: w.size // 20_000]
        uni = None if uni is None else uni[:: uni.size // 20_000][: w.size]
    top = float(np.abs(w).max())
    if top == 0.0:
        return 0.0
    c = top * _CANDIDATES[:, None]
    n_max = (1 << bits) - 1
    u = c / n_max
    n = np.clip(2.0 * np.floor(w[None, :] / (2.0 * u)) + 1.0, -n_max, n_max)
    if uni is not None and uni.any():
        n_uni = np.clip(np.floor(w[None, :] / u + 0.5), 0, n_max)
        n = np.where(uni[None, :], n_uni, n)
    err = ((w[None, :] - n * u) ** 2).sum(axis=1)
    return float(c[int(np.argmin(err)), 0])


def best_act_range(z: np.ndarray, bits: int) -> float:
    """The ``hi`` minimizing the ``bits``-bit activation quantization error of ``relu(z)``.

    Examples
    --------
    >>> z = np.random.default_rng(0).standard_normal(10_000)
    >>> 1.0 < best_act_range(z, 3) < 4.0
    True
    """
    y = np.maximum(np.asarray(z, dtype=np.float64).ravel(), 0.0)
    if y.size > 20_000:
        y = y[:: y.size // 20_000]
    top = float(y.max(initial=0.0))
    if top == 0.0:
        return 0.0
    hi = top * _CANDIDATES[:, None] * (1 << bits) / ((1 << bits) - 0.5)
    step = hi / (1 << bits)
    k = np.clip(np.floor(y[None, :] / step + 0.5), 0, (1 << bits) - 1)
    err = ((y[None, :] - k * step) ** 2).sum(axis=1)
    return float(hi[int(np.argmin(err)), 0])


class Scheme:
    """Range variables of one quantization scheme and the operations on them.

    Parameters
    ----------
    name
        ``"float"``, ``"per-layer"``, ``"global"`` or ``"fixed"``.
    net
        The network; its layers' :class:`LayerQuant` are set by :meth:`apply`.
    w_bits, a_bits, in_bits, b_bits
        Precisions (``b_bits=None``: :func:`cosim.quant.default_bias_bits`).
    hi, w_max
        Target (and initial) activation and weight ranges.
    """

    def __init__(
        self,
        name: str,
        net: Network,
        w_bits: int,
        a_bits: int,
        in_bits: int = 8,
        b_bits: int | None = None,
        hi: float = DEFAULT_HI,
        w_max: float = DEFAULT_W_MAX,
    ) -> None:
        if name not in SCHEMES:
            raise ValueError(f"unknown scheme {name!r}: choose one of {', '.join(SCHEMES)}")
        self.name = name
        self.net = net
        self.w_bits, self.a_bits, self.in_bits = w_bits, a_bits, in_bits
        self.b_bits = b_bits if b_bits is not None else default_bias_bits(w_bits)
        self.hi_target, self.w_max_target = float(hi), float(w_max)
        n_w = len(net.weight_layers)
        self.w_max = np.full(n_w, w_max, dtype=np.float64)  # W range of weight layer l
        self.hi_x = np.full(n_w, hi, dtype=np.float64)  # input (X) range of weight layer l
        self.hi_y = np.full(n_w, hi, dtype=np.float64)  # output (Y) range of hidden layer l
        if name == "fixed":
            self.hi_x[0] = FIXED_INPUT_HI
        # residual Adds: the range of each Add's output grid (global: the shared hi)
        self.hi_add = np.full(len(net.adds), hi, dtype=np.float64)
        for pool in net.layers:
            if isinstance(pool, AvgPool2D):
                pool.quantized = self.quantized
        # validate all grids once (bits out of range fail here, naming the field)
        WeightGrid(w_max, w_bits), ActGrid(hi, a_bits), ActGrid(hi, in_bits)
        BiasGrid(1.0, self.b_bits)

    @property
    def quantized(self) -> bool:
        return self.name != "float"

    # -- grids -----------------------------------------------------------------------------
    def grids(self, li: int) -> tuple[WeightGrid, ActGrid, ActGrid | None, BiasGrid]:
        """``(W, X, Y, B)`` grids of weight layer ``li`` (Y is None for the head)."""
        n_w = len(self.net.weight_layers)
        in_grid = ActGrid(self.hi_x[li], self.in_bits if li == 0 else self.a_bits)
        w_grid = WeightGrid(self.w_max[li], self.w_bits)
        out_grid = ActGrid(self.hi_y[li], self.a_bits) if li < n_w - 1 else None
        return w_grid, in_grid, out_grid, BiasGrid.for_layer(w_grid, in_grid, self.b_bits)

    def apply(self, unipolar_grid: list[np.ndarray] | None = None, mix: float = 1.0) -> None:
        """Set every weight layer's :class:`LayerQuant` from the current ranges.

        ``unipolar_grid`` (one bool mask per hidden layer) selects the filters quantized on
        the unipolar grid; ``mix`` < 1 blends their bipolar and unipolar levels (training
        only; see :mod:`cosim.train.unipolar`).
        """
        for li, lay in enumerate(self.net.weight_layers):
            if not self.quantized:
                lay.q = LayerQuant()
                continue
            w, x, y, b = self.grids(li)
            hidden = li < len(self.net.hidden)
            uni = unipolar_grid[li] if (unipolar_grid is not None and hidden) else None
            lay.q = LayerQuant(
                w_grid=w, in_grid=x, out_grid=y, b_grid=b, unipolar_grid=uni, unipolar_mix=mix
            )
        for i, add in enumerate(self.net.layers):
            if isinstance(add, Add):
                add.grids = (
                    None
                    if not self.quantized
                    else (
                        self.tensor_grid(self.net.tensor_of[i - 1]),
                        self.tensor_grid(self.net.tensor_of[add.source]),
                        self.tensor_grid(self.net.tensor_of[i]),
                    )
                )

    def tensor_grid(self, t: tuple[Any, ...] | None) -> ActGrid:
        """The grid of the codes of tensor ``t`` (:attr:`Network.tensor_of`): the input's,
        a hidden layer's output grid or an Add's."""
        assert t is not None  # an activation, not an accumulator
        if t[0] == "w":
            return ActGrid(self.hi_y[t[1]], self.a_bits)
        if t[0] == "add":
            return ActGrid(self.hi_add[t[1]], self.a_bits)
        return ActGrid(self.hi_x[0], self.in_bits)

    def _link_inputs(self) -> None:
        """Per-layer grids of a residual network: every weight layer's X range is the range
        of the tensor it reads (an Add's output or a hidden layer's)."""
        pos = {id(lay): i for i, lay in enumerate(self.net.layers)}
        for li, lay in enumerate(self.net.weight_layers[1:], 1):
            t = self.net.tensor_of[pos[id(lay)] - 1]
            assert t is not None and t[0] != "in"  # the input feeds the first layer only
            self.hi_x[li] = self.hi_y[t[1]] if t[0] == "w" else self.hi_add[t[1]]

    # -- global control --------------------------------------------------------------------
    def _groups(self) -> list[list[int]]:
        hidden = list(range(len(self.net.hidden)))
        return [hidden] if self.name == "global" else [[li] for li in hidden]

    def control(self, unipolar: list[np.ndarray] | None = None) -> None:
        """One global-control update from the current weights and the last batch's stats.

        ``unipolar`` (a mask per hidden layer) marks filters measured on the unipolar grid.
        """
        if not self.quantized or self.name == "fixed":
            return
        net = self.net
        lo_w, hi_w = self.w_max_target / 8, self.w_max_target * 8
        lo_y, hi_y = self.hi_target / 8, self.hi_target * 8
        for group in self._groups():
            w = np.concatenate([net.weight_layers[li].params["W"].ravel() for li in group])
            uni = None
            if unipolar is not None:
                uni = np.concatenate(
                    [
                        np.broadcast_to(
                            unipolar[li][:, None], net.weight_layers[li].params["W"].shape
                        ).ravel()
                        for li in group
                    ]
                )
            s_w = best_weight_range(w, self.w_bits, uni)
            s_y = 0.0
            if self.name == "per-layer":  # global: X = Y = the target range (a gauge)
                samples = [s for s in (net.acts[li].sample for li in group) if s is not None]
                s_y = best_act_range(np.concatenate(samples), self.a_bits) if samples else 0.0
            for li in group:
                if s_w > 0:
                    self.w_max[li] = np.clip(
                        self.w_max[li] + _MU * (s_w - self.w_max[li]), lo_w, hi_w
                    )
                if s_y > 0:
                    self.hi_y[li] = np.clip(self.hi_y[li] + _MU * (s_y - self.hi_y[li]), lo_y, hi_y)
        head = len(net.weight_layers) - 1
        if self.name == "global":
            self.w_max[head] = self.w_max[0]  # the head shares W
        else:  # per-layer: X of a layer is Y of the previous; the head calibrates its W
            if net.adds:  # each Add's own range; a layer reads the tensor before it
                for m, add in enumerate(net.adds):
                    if add.sample is not None:
                        s_a = best_act_range(add.sample, self.a_bits)
                        if s_a > 0:
                            self.hi_add[m] = np.clip(
                                self.hi_add[m] + _MU * (s_a - self.hi_add[m]), lo_y, hi_y
                            )
                self._link_inputs()
            else:
                self.hi_x[1:] = self.hi_y[:-1]
            s_w = best_weight_range(net.head.params["W"], self.w_bits)
            if s_w > 0:
                self.w_max[head] = np.clip(
                    self.w_max[head] + _MU * (s_w - self.w_max[head]), lo_w, hi_w
                )

    def clip_weights(self) -> None:
        """``fixed`` scheme: clip every layer's shadow weights to ``+-w_max`` (Bao et al.'s
        weight clipping); no-op for the other schemes."""
        if self.name != "fixed":
            return
        for li, lay in enumerate(self.net.weight_layers):
            lim = np.float32(self.w_max[li])
            np.clip(lay.params["W"], -lim, lim, out=lay.params["W"])

    def set_act_l1(self, lam: float) -> None:
        """Set the activation L1 strength of every hidden activation (see
        :class:`~cosim.train.layers.activation.ActQuant`); its scale is each layer's Y range
        (the target ``hi`` for the float scheme)."""
        for li, act in enumerate(self.net.acts):
            act.l1 = float(lam)
            act.l1_hi = float(self.hi_y[li] if self.quantized else self.hi_target)

    # -- range losses ----------------------------------------------------------------------
    def set_act_penalty(self, lam: float) -> None:
        for act in self.net.acts:
            act.penalty = lam if (self.name == "global" and lam > 0) else 0.0

    def range_penalty(self, lam: float) -> float:
        """Add the L_W and L_B gradients to the layers' grads; return L_W + L_B + L_X."""
        if self.name != "global" or lam <= 0:
            return 0.0
        total = sum(a.last_penalty for a in self.net.acts)
        for li, lay in enumerate(self.net.weight_layers):
            w_grid, _, _, b_grid = self.grids(li)
            for key, lim in (("W", w_grid.w_max), ("b", b_grid.b_max)):
                p = lay.params[key]
                over = np.maximum(np.abs(p) - lim, 0)
                if not over.any():
                    continue
                total += float(lam * np.mean(over * over) / lim**2)
                lay.grads[key] += (2 * lam / (p.size * lim**2)) * over * np.sign(p)
        return total

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The ranges (``hi_add`` only for a network with residual Adds)."""
        d = {
            "w_max": self.w_max.tolist(),
            "hi_x": self.hi_x.tolist(),
            "hi_y": self.hi_y.tolist(),
        }
        if len(self.hi_add):
            d["hi_add"] = self.hi_add.tolist()
        return d

    def load_state(self, d: dict[str, Any]) -> None:
        self.w_max = np.asarray(d["w_max"], dtype=np.float64)
        self.hi_x = np.asarray(d["hi_x"], dtype=np.float64)
        self.hi_y = np.asarray(d["hi_y"], dtype=np.float64)
        if "hi_add" in d:
            self.hi_add = np.asarray(d["hi_add"], dtype=np.float64)
