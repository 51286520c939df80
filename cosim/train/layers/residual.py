"""Residual graphs in the trainer: the signed activation of a pair and the residual Add.

A residual block ``conv -> Add(skip) -> relu`` adds the second weight layer's *signed*
output to an earlier activation. On the chip (:class:`cosim.model.format.AddLayer`) that
layer is deployed as the pair ``[W; -W]``, ``[b; -b]``: its ADCs give ``relu(z)`` and
``relu(-z)`` and the Add takes their difference. The trainer holds the layer once, with
``C`` outputs, followed by :class:`SignedAct`, whose codes are exactly that difference,
``requantize(acc) - requantize(-acc)`` (``z`` rounded half away from zero onto the grid,
clipped to ``+-(2**a - 1)`` codes); the export writes the pair.

:class:`Add` is the Add of the current codes and the output of an earlier layer
``source`` (an index into ``Network.layers``), :func:`cosim.quant.residual_add` exactly as
:func:`cosim.model.forward.add_codes` (on one shared grid the sum of the codes clipped to
``[0, 2**a - 1]``; per-layer grids rescale each operand by ``step_operand / step_out``).

STE: :class:`SignedAct` passes the gradient where ``|z| < hi``; :class:`Add` where
``0 < s < hi`` (``s`` the unclipped sum in real units), to both operands, each times its
ratio; the network accumulates the skip operand's gradient at its source. Float layers:
``SignedAct`` is the identity (``relu(z) - relu(-z) = z``) and the Add ``relu(a + b)``.
"""

from __future__ import annotations

import numpy as np

from cosim.quant import ActGrid, add_ratio, requantize, residual_add
from cosim.train.layers.activation import ActQuant, _subsample
from cosim.train.layers.base import Layer


class SignedAct(ActQuant):
    """The pair's two ADCs seen as one signed activation: ``k = Q(z) - Q(-z)``.

    The global range loss (``penalty``) applies to ``|z|`` beyond ``hi``, the activation L1
    term to ``|y|``; the range statistics (``sample``) are ``|z|``, whose MSE-optimal range
    is that of ``relu(z)`` and ``relu(-z)`` together, as the importer calibrates the pair.
    """

    kind = "act_pair"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        q = self.source.q
        if not q.quantized:
            y = x.astype(np.float32, copy=False)
            if train:
                self._mask = np.ones(x.shape, dtype=bool)
                self._over = None
                self._sign = np.sign(x).astype(np.float32)
                self.sample = _subsample(np.abs(x))
                self._l1_term(float(np.abs(y).sum(dtype=np.float64)), x.shape[0])
            return y
        assert q.out_grid is not None
        bits = q.out_grid.bits
        codes = requantize(x, q.scale, bits, dtype=np.float32)
        codes -= requantize(-x, q.scale, bits, dtype=np.float32)
        if train:
            hi = q.out_grid.hi
            z = x.astype(np.float32) * np.float32(q.acc_unit)
            az = np.abs(z)
            self._sign = np.sign(z).astype(np.float32)
            self._mask = az < hi
            self.sample = _subsample(az)
            self._over = None
            self.last_penalty = 0.0
            if self.penalty > 0:
                over = np.maximum(az - np.float32(hi), 0)
                self.last_penalty = float(self.penalty * np.mean(over * over) / hi**2)
                self._over = (
                    over * self._sign * np.float32(2.0 * self.penalty / (over.size * hi**2))
                )
            self._l1_term(float(np.abs(codes).sum(dtype=np.float64)) * q.out_grid.step, x.shape[0])
        return codes

    def backward(self, dy: np.ndarray) -> np.ndarray:
        q = self.source.q
        dz = dy * self._mask
        if q.quantized:
            assert q.out_grid is not None
            dz *= np.float32(1.0 / q.out_grid.step)
        if self._over is not None:
            dz += self._over
        if self._l1_grad > 0:
            assert self._mask is not None
            dz += self._mask * self._sign * np.float32(self._l1_grad)
        return dz


class Add(Layer):
    """Residual Add of the current codes and layer ``source``'s output, ReLU'd and clipped.

    Parameters
    ----------
    source
        Index into ``Network.layers`` of the layer whose output is the skip operand.
    pair
        The current operand is a :class:`SignedAct`'s output (exported as a pair).

    ``grids`` (set by the scheme; None for float): ``(operand, source, out)`` activation
    grids. ``sample`` keeps a strided sample of the real unclipped sum for range control.
    """

    kind = "add"

    def __init__(self, source: int, pair: bool = False) -> None:
        super().__init__()
        self.source = source
        self.pair = pair
        self.grids: tuple[ActGrid, ActGrid, ActGrid] | None = None
        self.sample: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._r = (1.0, 1.0)

    def forward_add(self, a: np.ndarray, skip: np.ndarray, train: bool = False) -> np.ndarray:
        """The Add's output for the current operand ``a`` and the skip operand ``skip``."""
        if a.shape != skip.shape:
            raise ValueError(f"residual Add of shapes {a.shape} and {skip.shape}")
        if self.grids is None:
            s = a + skip
            if train:
                self._mask = s > 0
                self._r = (1.0, 1.0)
                self.sample = _subsample(s)
            return np.maximum(s, 0, dtype=np.float32)
        g_a, g_s, g_o = self.grids
        r_a, r_s = add_ratio(g_a, g_o), add_ratio(g_s, g_o)
        out = residual_add(a, r_a, skip, r_s, g_o.bits, dtype=np.float32)
        if train:
            t = np.multiply(a, r_a, dtype=np.float64)
            t += np.multiply(skip, r_s, dtype=np.float64)
            self._mask = (t > 0) & (t < float(1 << g_o.bits))
            self._r = (r_a, r_s)
            self.sample = _subsample(t * g_o.step)
        return out

    def backward_add(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d operand, d skip)`` for the gradient ``dy`` of the Add's output."""
        assert self._mask is not None  # kept by forward_add(train=True)
        d = dy * self._mask
        r_a, r_s = self._r
        d_a = d if r_a == 1.0 else d * np.float32(r_a)
        d_s = d if r_s == 1.0 else d * np.float32(r_s)
        return d_a, d_s

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise TypeError("an Add takes two operands: Network calls forward_add")

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise TypeError("an Add gives two gradients: Network calls backward_add")
