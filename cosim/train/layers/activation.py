"""The activation quantizer: the ADC after a hidden weight layer, a ReLU with STE."""

from __future__ import annotations

import numpy as np

from cosim.quant import requantize
from cosim.train.layers.base import Layer
from cosim.train.layers.weighted import WeightLayer


class ActQuant(Layer):
    """The ADC after a hidden weight layer: clipped uniform quantizer with ReLU embedded.

    Quantized: ``codes = requantize(acc, u*step_in/step_out, a)``; STE passes the gradient
    where ``0 < z < hi_out`` (``z = acc * u * step_in``). Float: ReLU.
    ``penalty`` (set by the scheme) adds ``penalty * mean(relu(z - hi)**2) / hi**2`` to the
    loss, the global scheme's saturation term; its value is left in ``last_penalty``.
    ``l1`` (set by the trainer, ``--act-l1``) adds the sparsity term
    ``l1 * sum(y) / (batch * l1_hi)``: the sum of the layer's activations ``y`` (real
    values, ``codes * step``; float: ``relu(x)``) in units of its range ``l1_hi``, per
    sample; its value is left in ``last_l1`` and its STE gradient,
    ``l1 / (batch * l1_hi)`` where the activation passes gradient, is added in
    :meth:`backward`.
    """

    kind = "act"

    def __init__(self, source: WeightLayer) -> None:
        super().__init__()
        self.source = source
        self.penalty = 0.0
        self.last_penalty = 0.0
        self.l1 = 0.0
        self.l1_hi = 1.0
        self.last_l1 = 0.0
        self._l1_grad = 0.0
        self.sample: np.ndarray | None = None  # a strided sample of z for range statistics
        self._mask: np.ndarray | None = None
        self._over: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        q = self.source.q
        if not q.quantized:
            if train:
                self._mask = x > 0
                self._over = None
                self.sample = _subsample(x)
            y = np.maximum(x, 0, dtype=np.float32)
            if train:
                self._l1_term(float(y.sum(dtype=np.float64)), x.shape[0])
            return y
        assert q.out_grid is not None  # a quantized hidden layer
        codes = requantize(x, q.scale, q.out_grid.bits, dtype=np.float32)
        if train:
            hi = q.out_grid.hi
            z = x.astype(np.float32) * np.float32(q.acc_unit)
            self._mask = (z > 0) & (z < hi)
            self.sample = _subsample(z)
            self._over = None
            self.last_penalty = 0.0
            if self.penalty > 0:
                over = np.maximum(z - np.float32(hi), 0)
                self.last_penalty = float(self.penalty * np.mean(over * over) / hi**2)
                self._over = over * np.float32(2.0 * self.penalty / (over.size * hi**2))
            self._l1_term(float(codes.sum(dtype=np.float64)) * q.out_grid.step, x.shape[0])
        return codes

    def _l1_term(self, y_sum: float, batch: int) -> None:
        """The L1 term's value and per-element STE gradient for a batch whose activations
        sum to ``y_sum``."""
        if self.l1 > 0:
            self.last_l1 = self.l1 * y_sum / (batch * self.l1_hi)
            self._l1_grad = self.l1 / (batch * self.l1_hi)
        else:
            self.last_l1 = self._l1_grad = 0.0

    def backward(self, dy: np.ndarray) -> np.ndarray:
        q = self.source.q
        dz = dy * self._mask
        if q.quantized:
            assert q.out_grid is not None  # a quantized hidden layer
            dz *= np.float32(1.0 / q.out_grid.step)
        if self._over is not None:
            dz += self._over
        if self._l1_grad > 0:
            assert self._mask is not None  # set by the training forward
            dz += self._mask * np.float32(self._l1_grad)
        return dz


def _subsample(z: np.ndarray, n: int = 4096) -> np.ndarray:
    flat = z.reshape(-1)
    step = max(1, flat.size // n)
    return flat[::step].astype(np.float32, copy=True)
