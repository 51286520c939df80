"""Weight layers: :class:`Dense` and :class:`Conv2D` on their shared :class:`WeightLayer`
(quantized weights and bias with STE, exact accumulators)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cosim.train.layers.base import Layer, LayerQuant

_F32_EXACT = float(1 << 24)


@dataclass
class _WCache:
    x: np.ndarray | None = None
    wq: np.ndarray | None = None
    w_mask: np.ndarray | None = None
    b_mask: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class WeightLayer(Layer):
    """Shared part of :class:`Dense` and :class:`Conv2D`: shadow weights and their quantizer.

    ``params['W']`` has shape ``(out, fan_in)`` (a conv kernel ``(out, C, kh, kw)`` is stored
    flattened in C, kh, kw order), ``params['b']`` shape ``(out,)``.
    """

    def __init__(self, fan_in: int, n_out: int, rng: np.random.Generator) -> None:
        super().__init__()
        std = np.sqrt(2.0 / fan_in)  # He initialisation (ReLU)
        self.params["W"] = (rng.standard_normal((n_out, fan_in)) * std).astype(np.float32)
        self.params["b"] = np.zeros(n_out, dtype=np.float32)
        self.fan_in = fan_in
        self.n_out = n_out
        self.q = LayerQuant()
        self.need_dx = True
        self._c = _WCache()

    # -- quantized operands -------------------------------------------------------------
    def operands(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(W_eff, b_eff, w_mask, b_mask)``: weight levels and bias in accumulator units.

        Float layers return the shadow parameters and no masks.
        """
        W, b = self.params["W"], self.params["b"]
        q = self.q
        if not q.quantized:
            return W, b, None, None
        # the scheme sets every grid of a quantized layer (out_grid: hidden layers only)
        assert q.w_grid is not None and q.in_grid is not None and q.b_grid is not None
        uni = False if q.unipolar_grid is None else q.unipolar_grid
        n_w = q.w_grid.levels(W, uni, dtype=np.float32)
        if q.unipolar_grid is not None and q.unipolar_mix < 1.0 and q.unipolar_grid.any():
            # progressive transition: (1 - alpha) * bipolar levels + alpha * unipolar levels
            bip = q.w_grid.levels(W[q.unipolar_grid], False, dtype=np.float32)
            a = np.float32(q.unipolar_mix)
            n_w[q.unipolar_grid] = (1 - a) * bip + a * n_w[q.unipolar_grid]
        n_b = q.b_grid.levels(b, dtype=np.float64)
        b_acc = (n_b * float(1 << q.in_grid.bits)).astype(np.float32)
        w_mask = np.abs(W) <= q.w_grid.w_max
        b_mask = np.abs(b) <= q.b_grid.b_max
        return n_w, b_acc, w_mask, b_mask

    def _acc_dtype(self, w_eff: np.ndarray, b_eff: np.ndarray) -> type:
        q = self.q
        if not q.quantized:
            return np.float32
        assert q.in_grid is not None  # set with the other grids
        bound = float(np.abs(w_eff).sum(axis=1).max()) * q.in_grid.top_code + float(
            np.abs(b_eff).max(initial=0.0)
        )
        return np.float32 if bound < _F32_EXACT else np.float64

    def _param_grads(self, dz2: np.ndarray, cols: np.ndarray) -> None:
        """Weight/bias gradients from ``dz2`` (M, out) and inputs ``cols`` (M, fan_in)."""
        q, c = self.q, self._c
        dW = (dz2.T @ cols).astype(np.float32)
        db = dz2.sum(axis=0).astype(np.float32)
        if q.quantized:
            # z = sum (n u)(k step_in) + b_q: dz/dW_q = k * step_in, dz/db_q = 1
            dW *= np.float32(q.in_unit)
            dW *= c.w_mask
            db *= c.b_mask
        self.grads["W"] = dW
        self.grads["b"] = db


class Dense(WeightLayer):
    """Fully connected layer ``z = x W^T + b`` on ``(N, fan_in)`` inputs."""

    kind = "dense"

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if in_shape != (self.fan_in,):
            raise ValueError(f"dense layer expects ({self.fan_in},) inputs, got {in_shape}")
        return (self.n_out,)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        w_eff, b_eff, w_mask, b_mask = self.operands()
        dt = self._acc_dtype(w_eff, b_eff)
        z: np.ndarray = x.astype(dt, copy=False) @ w_eff.T.astype(dt, copy=False)
        z += b_eff
        if train:
            self._c = _WCache(x=x, wq=w_eff, w_mask=w_mask, b_mask=b_mask)
        return z

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        c, q = self._c, self.q
        assert c.x is not None and c.wq is not None  # kept by forward(train=True)
        dy = dy.astype(np.float32, copy=False)
        self._param_grads(dy, c.x.astype(np.float32, copy=False))
        if not self.need_dx:
            return None
        dx = dy @ c.wq.astype(np.float32, copy=False)
        if q.quantized:
            dx *= np.float32(q.acc_unit)
        return dx


def _pad_hw(x: np.ndarray, p: int) -> np.ndarray:
    if p == 0:
        return x
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


class Conv2D(WeightLayer):
    """2-D convolution on NHWC batches, vectorized with im2col (sliding windows + one GEMM).

    The kernel is ``(out, C, kh, kw)`` flattened to ``(out, C*kh*kw)``; zero padding
    (code 0 = value 0) and an integer stride.
    """

    kind = "conv2d"

    def __init__(
        self,
        in_ch: int,
        n_out: int,
        kernel: int,
        rng: np.random.Generator,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__(in_ch * kernel * kernel, n_out, rng)
        self.in_ch = in_ch
        self.kernel = kernel
        self.stride = stride
        self.padding = padding

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = in_shape
        if c != self.in_ch:
            raise ValueError(f"conv layer expects {self.in_ch} channels, got {c}")
        ho = (h + 2 * self.padding - self.kernel) // self.stride + 1
        wo = (w + 2 * self.padding - self.kernel) // self.stride + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"a {self.kernel}x{self.kernel} kernel does not fit {h}x{w} inputs")
        return (ho, wo, self.n_out)

    def _cols(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        xp = _pad_hw(x, self.padding)
        k, s = self.kernel, self.stride
        win = sliding_window_view(xp, (k, k), axis=(1, 2))  # N, Ho', Wo', C, k, k
        if s > 1:
            win = win[:, ::s, ::s]
        n, ho, wo = win.shape[:3]
        return win.reshape(n * ho * wo, self.fan_in), ho, wo

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        w_eff, b_eff, w_mask, b_mask = self.operands()
        dt = self._acc_dtype(w_eff, b_eff)
        cols, ho, wo = self._cols(x.astype(dt, copy=False))
        z = cols @ w_eff.T.astype(dt, copy=False)
        z += b_eff
        if train:
            self._c = _WCache(x=None, wq=w_eff, w_mask=w_mask, b_mask=b_mask)
            self._c.extra = {"cols": cols, "x_shape": x.shape, "ho": ho, "wo": wo}
        return z.reshape(x.shape[0], ho, wo, self.n_out)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        c, q = self._c, self.q
        e = c.extra
        dz2 = dy.reshape(-1, self.n_out).astype(np.float32, copy=False)
        self._param_grads(dz2, e["cols"].astype(np.float32, copy=False))
        if not self.need_dx:
            return None
        assert c.wq is not None  # kept by forward(train=True)
        dcols = dz2 @ c.wq.astype(np.float32, copy=False)
        if q.quantized:
            dcols *= np.float32(q.acc_unit)
        n, h, w, ch = e["x_shape"]
        k, s, p, ho, wo = self.kernel, self.stride, self.padding, e["ho"], e["wo"]
        dcols = dcols.reshape(n, ho, wo, ch, k, k)
        dxp = np.zeros((n, h + 2 * p, w + 2 * p, ch), dtype=np.float32)
        for i in range(k):
            for j in range(k):
                dxp[:, i : i + s * ho : s, j : j + s * wo : s, :] += dcols[..., i, j]
        return dxp[:, p : p + h, p : p + w, :] if p else dxp
