"""The integer reference forward pass: the *definition* of a quantized model's predictions.

For each hidden weight layer, with input codes ``k_x`` on its input grid::

    acc    = sum(n_w * k_x) + n_b * 2**bits_in          (exact integers, int64)
    y_code = requantize(acc, u * step_in / step_out, a)  (cosim.quant.requantize)

average pooling re-quantizes codes with ``(sum + n//2) // n``, max pooling is exact, flatten
takes (C, H, W) order, a residual Add (:class:`~cosim.model.format.AddLayer`) gives
``residual_add(k_a, step_a / step_y, k_src, step_src / step_y, a)`` (on one shared grid:
``clip(k_a + k_src, 0, 2**a - 1)``; ``k_a`` the difference of the two halves of a pair),
and the head (the digital classifier) returns
``logits = u * step_in * acc`` in float64. The analog engine replaces the exact ``acc`` by
what the crossbar, TIA and ADC produce and must give these codes when ideal.

``cosim train`` reports the test accuracy of quantized models from this function.
:func:`float_forward` is the counterpart for float-scheme models and :func:`predict`
dispatches on the scheme.

Examples
--------
>>> from cosim.model.format import WeightLayer, Model
>>> from cosim.quant import ActGrid, BiasGrid, Preprocessing, WeightGrid
>>> wg, ig = WeightGrid(0.25, 2), ActGrid(2.0, 8)
>>> head = WeightLayer("dense", "head", (2,), (2,), np.zeros(2, bool),
...                    n_w=np.array([[3, -3], [-3, 3]]), n_b=np.zeros(2, np.int64),
...                    w_grid=wg, in_grid=ig, b_grid=BiasGrid.for_layer(wg, ig, 4))
>>> m = Model("global", "tiny", (head,), Preprocessing(0.0, 1.0, 8, (2,)), 2.0, 2)
>>> integer_forward(m, np.array([[0.9, 0.1]])).predictions.tolist()
[0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cosim.model.format import AddLayer, FlattenLayer, Model, PoolLayer, WeightLayer
from cosim.quant import add_ratio, avgpool_round, requantize, residual_add

_F64_EXACT = float(1 << 53)


@dataclass(frozen=True)
class ForwardResult:
    """Logits (float64, ``(N, classes)``), predicted classes, and per-layer codes if asked.

    ``codes[i]`` is the int64 output of ``model.layers[i]`` (the ADC codes for a hidden
    weight layer, the pooled codes for a pool); the head's entry is its accumulator.
    """

    logits: np.ndarray
    predictions: np.ndarray
    codes: list[np.ndarray] = field(default_factory=list)


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer product ``a @ b`` of int64 arrays, exact.

    When every partial sum is bounded by 2**53 (always, for 8-bit codes and levels and any
    practical fan-in) the product is computed by float64 BLAS, whose partial sums are then
    exact integers; otherwise in int64 arithmetic.
    """
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).sum(axis=0).max(initial=0))
    if bound < _F64_EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """Patches of images ``x`` ``(N, C, H, W)`` as rows: ``(N*Ho*Wo, C*k*k)``, and ``Ho, Wo``.

    Windows of ``k x k`` pixels every ``stride`` pixels after zero padding of ``pad`` on each
    side; a row is one output pixel (``n, ho, wo`` order), its columns ``(c, kh, kw)`` order,
    the order of a conv weight ``(out, c, kh, kw)`` reshaped to ``(out, c*k*k)``.
    """
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
    return cols, ho, wo


def _weight_layer(lay: WeightLayer, x: np.ndarray, n_w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``x @ n_w^T + bias`` for dense or conv layers (NCHW), in the dtype of the inputs."""
    w2 = n_w.reshape(n_w.shape[0], -1)
    if lay.kind == "dense":
        mm = exact_matmul(x, w2.T) if x.dtype == np.int64 else x @ w2.T
        return mm + bias
    n = x.shape[0]
    assert lay.kernel is not None  # conv2d layers have a kernel
    cols, ho, wo = im2col(x, lay.kernel, lay.stride, lay.padding)
    mm = exact_matmul(cols, w2.T) if x.dtype == np.int64 else cols @ w2.T
    mm = mm + bias
    return mm.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def pool(lay: PoolLayer, x: np.ndarray, integer: bool) -> np.ndarray:
    """Pool images ``x`` ``(N, C, H, W)`` by ``lay`` (average or max over ``size x size``).

    Integer codes average with :func:`cosim.quant.avgpool_round` when ``integer``; float
    inputs with ``integer=False`` average exactly. Max pooling is exact either way.
    """
    n, c, h, w = x.shape
    s = lay.size
    channels_last = x.transpose(0, 2, 3, 1)
    if x.dtype.kind in "iu" and channels_last.flags.c_contiguous and h % s == w % s == 0:
        # a layer's output as the engine and _weight_layer leave it, (n, h, w, c) in memory:
        # combine the window's rows, then its columns, each a pass over long contiguous runs
        # (a reduction over the small window axes of this view iterates c values at a time);
        # exact in integers, so the same result
        op = np.maximum if lay.kind == "maxpool2d" else np.add
        rows = channels_last.reshape(n * (h // s), s, w * c)
        acc = rows[:, 0].astype(np.promote_types(x.dtype, np.int32))  # room for the sums
        for a in range(1, s):
            op(acc, rows[:, a], out=acc)
        cols = acc.reshape(-1, s, c)
        out = cols[:, 0].copy()
        for b in range(1, s):
            op(out, cols[:, b], out=out)
        out = out.reshape(n, h // s, w // s, c).transpose(0, 3, 1, 2)
        return out if lay.kind == "maxpool2d" else avgpool_round(out, s * s)
    blocks = x.reshape(n, c, h // s, s, w // s, s)
    if lay.kind == "maxpool2d":
        return blocks.max(axis=(3, 5))
    sums = blocks.sum(axis=(3, 5))
    return avgpool_round(sums, s * s) if integer else sums / (s * s)


def add_operand(lay: AddLayer, x: np.ndarray) -> np.ndarray:
    """The Add's first operand: ``x`` itself, or for a pair the positive half of the channels
    (features) less the negative half (signed)."""
    if not lay.pair:
        return x
    c = x.shape[1] // 2
    return x[:, :c] - x[:, c:]


def add_ratios(model: Model, i: int) -> tuple[float, float]:
    """``(r_a, r_src)``: the rescale factors of the operands of the Add ``model.layers[i]``
    onto its output grid (:func:`cosim.quant.add_ratio`; 1.0 each on one shared grid)."""
    lay = model.layers[i]
    assert isinstance(lay, AddLayer) and lay.out_grid is not None  # a quantized Add
    g_a, g_s = model.code_grid(i - 1), model.code_grid(lay.source)
    assert g_a is not None and g_s is not None  # load_model checks every Add's operands
    return add_ratio(g_a, lay.out_grid), add_ratio(g_s, lay.out_grid)


def add_codes(model: Model, i: int, k: np.ndarray, k_src: np.ndarray) -> np.ndarray:
    """Output codes of the residual Add ``model.layers[i]`` (the integer reference's, which
    the engine calls too): ``k`` the current codes, ``k_src`` its source layer's."""
    lay = model.layers[i]
    assert isinstance(lay, AddLayer) and lay.out_grid is not None
    r_a, r_s = add_ratios(model, i)
    return residual_add(add_operand(lay, k), r_a, k_src, r_s, lay.out_grid.bits)


def integer_forward(model: Model, x_raw: np.ndarray, keep_codes: bool = False) -> ForwardResult:
    """Run a quantized model on raw samples ``(N,) + input_shape`` with exact integers.

    Parameters
    ----------
    model
        A quantized model (scheme ``per-layer`` or ``global``).
    x_raw
        Raw samples as the dataset stores them; :class:`~cosim.quant.Preprocessing` turns
        them into input codes.
    keep_codes
        Return every layer's integer output in ``codes``.
    """
    if not model.quantized:
        raise ValueError("integer_forward needs a quantized model; use float_forward")
    k = model.preprocessing.codes(x_raw)
    codes: list[np.ndarray] = []
    logits = None
    sources = model.add_sources()
    saved: dict[int, np.ndarray] = {}
    for i, lay in enumerate(model.layers):
        if isinstance(lay, WeightLayer):
            assert lay.n_w is not None and lay.n_b is not None  # a quantized model
            assert lay.w_grid is not None and lay.in_grid is not None
            bias = lay.n_b * (1 << lay.in_grid.bits)
            acc = _weight_layer(lay, k, lay.n_w, bias)
            if lay.is_hidden:
                assert lay.out_grid is not None
                k = requantize(acc, lay.scale, lay.out_grid.bits)
            else:
                logits = acc.astype(np.float64) * (lay.w_grid.unit * lay.in_grid.step)
                k = acc
        elif isinstance(lay, PoolLayer):
            k = pool(lay, k, integer=True)
        elif isinstance(lay, FlattenLayer):
            k = k.reshape(k.shape[0], -1)
        elif isinstance(lay, AddLayer):
            k = add_codes(model, i, k, saved[lay.source])
        if i in sources:
            saved[i] = k
        if keep_codes:
            codes.append(k)
    assert logits is not None
    return ForwardResult(logits, np.argmax(logits, axis=1), codes)


def float_forward(model: Model, x_raw: np.ndarray) -> ForwardResult:
    """Run a float-scheme model: ``x = x01 * input_hi``, ReLU after hidden layers (float64)."""
    x = model.preprocessing.unit(x_raw) * model.input_hi
    sources = model.add_sources()
    saved: dict[int, np.ndarray] = {}
    for i, lay in enumerate(model.layers):
        if isinstance(lay, WeightLayer):
            x = _weight_layer(lay, x, lay.weights(), lay.biases())
            if lay.is_hidden:
                x = np.maximum(x, 0.0)
        elif isinstance(lay, PoolLayer):
            x = pool(lay, x, integer=False)
        elif isinstance(lay, AddLayer):
            x = np.maximum(add_operand(lay, x) + saved[lay.source], 0.0)
        else:
            x = x.reshape(x.shape[0], -1)
        if i in sources:
            saved[i] = x
    return ForwardResult(x, np.argmax(x, axis=1))


def predict(model: Model, x_raw: np.ndarray, batch: int = 2000) -> np.ndarray:
    """Predicted classes of raw samples, by :func:`integer_forward` or :func:`float_forward`."""
    fwd = integer_forward if model.quantized else float_forward
    out = [fwd(model, x_raw[i : i + batch]).predictions for i in range(0, len(x_raw), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
