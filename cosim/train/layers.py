"""Layers of the NumPy trainer: forward on codes, backward in real units.

Tensors between layers are image batches in NHWC order or feature batches ``(N, F)``.
In a quantized network the tensors a layer passes forward are *integers held in float
arrays* -- input codes, accumulators, output codes -- and each tensor's real value is that
integer times a unit the layer knows from its :class:`LayerQuant` (``x = k * step_in``,
``z = acc * u * step_in``). Gradients flowing backward between layers are with respect to
the codes (``dL/dk``); a weight layer turns them into gradients of its real pre-activation
``z`` and of its real weights. A float network is the same code with every unit equal to 1.

Straight-through estimators (STE)
---------------------------------
* Weights: ``dL/dW = dL/dW_q`` where ``|W| <= w_max`` and 0 beyond (inclusive bound).
* Biases: ``dL/db = dL/db_q`` where ``|b| <= b_max`` and 0 beyond.
* Activations (:class:`ActQuant`): ``dL/dz = dL/dy`` where ``0 < z < hi`` and 0 at or beyond
  either clip bound. The float network's activation is a plain ReLU (gradient where z > 0).

Exactness: a quantized weight layer's accumulator is computed in float32 when its bound
``sum |n_w| |k_x| + |n_b| 2**bits_in`` is below 2**24 (every partial sum is then an exact
integer), in float64 otherwise; the hidden layers' codes are then :func:`cosim.quant.requantize`
of the exact accumulator, identical to the integer reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cosim.quant import ActGrid, BiasGrid, WeightGrid, avgpool_round, layer_scale, requantize

_F32_EXACT = float(1 << 24)


@dataclass
class LayerQuant:
    """Quantization of one weight layer, set by the scheme before each forward pass.

    All grids ``None`` means a float layer. ``out_grid`` is ``None`` for the classifier head.
    """

    w_grid: WeightGrid | None = None
    in_grid: ActGrid | None = None
    out_grid: ActGrid | None = None
    b_grid: BiasGrid | None = None
    unipolar_grid: np.ndarray | None = None  # bool per filter: quantize on the unipolar grid
    unipolar_mix: float = 1.0  # alpha of the progressive bipolar -> unipolar transition

    @property
    def quantized(self) -> bool:
        return self.w_grid is not None

    @property
    def acc_unit(self) -> float:
        """Real value of one accumulator unit: ``u * step_in`` (1 for float layers)."""
        if self.w_grid is None:
            return 1.0
        return self.w_grid.unit * self.in_grid.step  # type: ignore[union-attr]

    @property
    def in_unit(self) -> float:
        return 1.0 if self.in_grid is None else self.in_grid.step

    @property
    def w_unit(self) -> float:
        return 1.0 if self.w_grid is None else self.w_grid.unit

    @property
    def scale(self) -> float:
        return layer_scale(self.w_grid, self.in_grid, self.out_grid)  # type: ignore[arg-type]


class Layer:
    """Base class: ``forward(x, train)`` and ``backward(dy)``; no parameters."""

    kind = "layer"
    params: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params = {}
        self.grads: dict[str, np.ndarray] = {}

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError


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
        z = x.astype(dt, copy=False) @ w_eff.T.astype(dt, copy=False)
        z += b_eff
        if train:
            self._c = _WCache(x=x, wq=w_eff, w_mask=w_mask, b_mask=b_mask)
        return z

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        c, q = self._c, self.q
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


class ActQuant(Layer):
    """The ADC after a hidden weight layer: clipped uniform quantizer with ReLU embedded.

    Quantized: ``codes = requantize(acc, u*step_in/step_out, a)``; STE passes the gradient
    where ``0 < z < hi_out`` (``z = acc * u * step_in``). Float: ReLU.
    ``penalty`` (set by the scheme) adds ``penalty * mean(relu(z - hi)**2) / hi**2`` to the
    loss, the global scheme's saturation term; its value is left in ``last_penalty``.
    """

    kind = "act"

    def __init__(self, source: WeightLayer) -> None:
        super().__init__()
        self.source = source
        self.penalty = 0.0
        self.last_penalty = 0.0
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
            return np.maximum(x, 0, dtype=np.float32)
        codes = requantize(x, q.scale, q.out_grid.bits, dtype=np.float32)  # type: ignore[union-attr]
        if train:
            hi = q.out_grid.hi  # type: ignore[union-attr]
            z = x.astype(np.float32) * np.float32(q.acc_unit)
            self._mask = (z > 0) & (z < hi)
            self.sample = _subsample(z)
            self._over = None
            self.last_penalty = 0.0
            if self.penalty > 0:
                over = np.maximum(z - np.float32(hi), 0)
                self.last_penalty = float(self.penalty * np.mean(over * over) / hi**2)
                self._over = over * np.float32(2.0 * self.penalty / (over.size * hi**2))
        return codes

    def backward(self, dy: np.ndarray) -> np.ndarray:
        q = self.source.q
        dz = dy * self._mask
        if q.quantized:
            dz *= np.float32(1.0 / q.out_grid.step)  # type: ignore[union-attr]
        if self._over is not None:
            dz += self._over
        return dz


def _subsample(z: np.ndarray, n: int = 4096) -> np.ndarray:
    flat = z.reshape(-1)
    step = max(1, flat.size // n)
    return flat[::step].astype(np.float32, copy=True)


class AvgPool2D(Layer):
    """Non-overlapping average pooling. On codes it re-quantizes with integer round half up,
    ``(sum + n//2) // n``; on floats it is the plain mean. Gradient: ``dy / n`` to each input.
    """

    kind = "avgpool2d"

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = size
        self.quantized = False

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = in_shape
        if h % self.size or w % self.size:
            raise ValueError(f"{self.size}x{self.size} pooling needs sizes divisible by it")
        return (h // self.size, w // self.size, c)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        n, h, w, c = x.shape
        s = self.size
        sums = x.reshape(n, h // s, s, w // s, s, c).sum(axis=(2, 4))
        if self.quantized:
            return avgpool_round(sums, s * s).astype(np.float32, copy=False)
        return sums * np.float32(1.0 / (s * s))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        s = self.size
        dx = np.repeat(np.repeat(dy, s, axis=1), s, axis=2)
        dx *= np.float32(1.0 / (s * s))
        return dx


class MaxPool2D(Layer):
    """Non-overlapping max pooling (exact on codes); gradient to the first maximum."""

    kind = "maxpool2d"

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = size
        self._arg: np.ndarray | None = None
        self._shape: tuple[int, ...] = ()

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = in_shape
        if h % self.size or w % self.size:
            raise ValueError(f"{self.size}x{self.size} pooling needs sizes divisible by it")
        return (h // self.size, w // self.size, c)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        n, h, w, c = x.shape
        s = self.size
        blocks = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 5, 2, 4)
        blocks = blocks.reshape(n, h // s, w // s, c, s * s)
        if train:
            self._arg = blocks.argmax(axis=-1)
            self._shape = x.shape
        return blocks.max(axis=-1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self._shape
        s = self.size
        onehot = np.arange(s * s) == self._arg[..., None]
        g = onehot * dy[..., None].astype(np.float32)
        g = g.reshape(n, h // s, w // s, c, s, s).transpose(0, 1, 4, 2, 5, 3)
        return g.reshape(n, h, w, c)


class Flatten(Layer):
    """NHWC images to feature vectors in (C, H, W) order, the model file's convention."""

    kind = "flatten"

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] = ()

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(in_shape)),)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._shape = x.shape
        if x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if len(self._shape) == 4:
            n, h, w, c = self._shape
            return dy.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        return dy.reshape(self._shape)


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    ez = np.exp(z)
    s = ez.sum(axis=1, keepdims=True)
    logp = z - np.log(s)
    n = len(y)
    loss = float(-logp[np.arange(n), y].mean())
    g = ez / s
    g[np.arange(n), y] -= 1.0
    g /= n
    return loss, g.astype(np.float32)
