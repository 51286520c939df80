"""Post-training quantization of an imported *residual* graph straight to a deployed model.

This module runs the converted specs (:func:`cosim.train.onnx_graph.convert`) in float64,
calibrates them and builds the :class:`~cosim.model.Model` directly.
:func:`network_from_model` then gives the trainer's :class:`~cosim.train.network.Network`
(with its :class:`~cosim.train.layers.Add` layers) and scheme ranges of such a model, from
which ``cosim import --finetune`` trains and the unipolar search chooses filters.

Method (the same as :mod:`cosim.train.ptq` where the graph allows it):

1. **Input.** The input map is folded into the first weight layer
   (:func:`~cosim.train.onnx_graph.fold_input`) for inputs ``x01 * hi``, ``hi`` the default
   range :data:`cosim.quant.DEFAULT_HI` (no search of the shared ``hi``).
2. **Signed operands.** A weight layer whose output a residual Add takes before any ReLU
   (conv - add - relu, the usual ResNet block) is deployed with weights ``[W; -W]`` and
   biases ``[b; -b]``: its ADCs give ``relu(z)`` and ``relu(-z)`` on two columns each and
   the Add takes their difference (``AddLayer.pair``), so the Add sees the signed ``z``
   rounded once onto the grid (twice the crossbar columns of that layer).
3. **Activation ranges and gauge.** The float forward of the calibration samples gives
   every activation tensor's values; each one's MSE-optimal (or min/max) range on the
   ``a``-bit grid (:func:`cosim.train.ptq.act_range`; a pair: over ``relu(z)`` and
   ``relu(-z)`` together). A residual Add ties its operands and its output to one gauge
   (``relu(c a + c b) = c relu(a + b)``), so the tensors of a residual stage form one group.
   **Global**: every group is rescaled by ``c = hi / R`` onto the shared grid ``[0, hi]``,
   ``R`` the group's range; a weight layer's weights are scaled by ``c_out / c_in``, its
   bias by ``c_out``. A tensor alone in its group takes its own range. A group of several
   tensors (the block's input, the pair, the Add's output, ...) takes the one ``R`` that
   minimizes the *sum of its tensors' relative quantization errors*
   ``sum (y - Q(y; R))**2 / sum y**2`` on the ``a``-bit grid
   (:func:`cosim.train.ptq.shared_act_range`, as :func:`~cosim.train.ptq.shared_weight_range`
   does for the shared ``w_max``; 96 candidates from 1 % to 100 % of the largest value, and
   the largest tensor range, so it never does worse than that); it may clip the tensor with
   the largest values a little so that the others use more of the grid's 2**a codes. The
   rule it replaced (``group_rule="max"``, and the only one with ``method="minmax"``) took the
   largest of the tensors' own ranges: nothing clipped, but a tensor with a smaller range
   used part of the grid (a quarter for ``h1`` of ``benchmarks/residual.py``). Measured
   (``benchmarks/residual_finetune.py --onnx resnet.onnx --dataset fashion-mnist --ptq``,
   the ResNet-style network of ``examples/pytorch_to_cosim.py``, W4A3, seed 0):
   post-training accuracy 70.82 % joint, 47.86 % max, 19.05 % min/max (float 90.30 %); on
   the digits residual MLP (seeds 0, 1, 2) 74.93 / 77.72 / 77.99 % joint against
   77.16 / 77.16 / 77.99 % max (no gain there: means 76.9 and 77.4 %, two of 359 test
   samples; at W8A8 95.54 % joint against 96.38 % max). Neither wins everywhere:
   ``cosim import --group-range auto``, the default, builds the model with both rules and
   keeps the one right on more calibration samples (:func:`cosim.train.importer.import_onnx`).
   **Per-layer**: nothing is rescaled; every tensor has its own grid ``ActGrid(R_t, a)``
   and each Add rescales its operands onto its own grid (:func:`cosim.quant.residual_add`
   with ``r = step_operand / step_add``).
4. **Weight ranges.** As :func:`cosim.train.ptq.calibrate`: one shared ``w_max`` for the
   global scheme (the head's weights and bias scaled by a positive factor to fit it: the
   arg-max is unchanged), one per layer for ``per-layer``; biases on ``u * hi_in``.

In the global scheme every activation grid, the Adds' included, is ``ActGrid(hi, a_bits)``,
so every Add is the plain sum of two codes clipped to the grid (ratios 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim import model as mf
from cosim.datasets import Dataset
from cosim.errors import OnnxImportError
from cosim.model.forward import im2col
from cosim.quant import DEFAULT_HI, ActGrid, BiasGrid, WeightGrid, default_bias_bits
from cosim.train.network import Network
from cosim.train.onnx_graph import Converted, Spec, fold_input
from cosim.train.ptq import METHODS, _shared, act_range, shared_act_range, weight_range

GROUP_RULES = ("joint", "max")


def _weighted(sp: Spec, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sp``'s float64 output for inputs ``x`` (NCHW or NF)."""
    if sp.kind == "dense":
        return x.reshape(x.shape[0], -1) @ w.T + b
    k = w.shape[2]
    cols, ho, wo = im2col(x, k, sp.stride, sp.padding)
    y = cols @ w.reshape(w.shape[0], -1).T + b
    return y.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2)


def _pool(sp: Spec, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    s = sp.size
    blocks = x.reshape(n, c, h // s, s, w // s, s)
    return blocks.max(axis=(3, 5)) if sp.kind == "maxpool" else blocks.mean(axis=(3, 5))


def run_specs(
    specs: list[Spec], params: list[tuple[np.ndarray, np.ndarray] | None], x: np.ndarray
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Float64 forward of converted specs on inputs ``x`` (as the first layer takes them).

    ``params[i]`` the ``(w, b)`` of weight spec ``i``. Returns the logits and every spec's
    output (a weight layer's the pre-activation ``z``; an Add's after its ReLU)."""
    outs: dict[int, np.ndarray] = {}
    index = {id(sp): i for i, sp in enumerate(specs)}
    for i, sp in enumerate(specs):
        if sp.kind in ("conv", "dense"):
            p = params[i]
            assert p is not None
            x = _weighted(sp, x, *p)
        elif sp.kind == "act":
            x = np.maximum(x, 0.0) if sp.cap is None else np.clip(x, 0.0, sp.cap)
        elif sp.kind in ("maxpool", "avgpool"):
            x = _pool(sp, x)
        elif sp.kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        else:  # add
            assert sp.source is not None
            x = np.maximum(x + outs[index[id(sp.source)]], 0.0)
        outs[i] = x
    return x, outs


class _Groups:
    """Union-find of the activation tensors that share one gauge."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def build_residual_model(
    conv: Converted,
    alpha: np.ndarray,
    beta: np.ndarray,
    dataset: Dataset,
    x01_cal: np.ndarray,
    scheme: str,
    w_bits: int,
    a_bits: int,
    in_bits: int,
    b_bits: int | None,
    method: str,
    architecture: str,
    info: dict[str, Any],
    shadow: list[tuple[np.ndarray, np.ndarray]] | None = None,
    group_rule: str = "joint",
    folded: bool = True,
) -> tuple[mf.Model, dict[str, Any]]:
    """The deployed model of a converted residual graph (see the module docstring).

    ``x01_cal``: calibration samples in ``[0, 1]`` (the dataset's preprocessing applied), in
    the dataset's layout. Returns the model and the calibration's report. ``shadow``, when
    given, receives the rescaled float ``(W, b)`` of every weight layer in order (a pair's
    ``W`` once), the starting point of fine-tuning (:func:`network_from_model`).
    ``group_rule`` (global scheme, ``method="mse"``): ``"joint"`` (default) or ``"max"``, the
    range of a residual group (step 3 of the module docstring). ``folded``: measure the
    folded float network's test accuracy (the report's ``float_accuracy_folded``, else
    None)."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: choose one of {METHODS}")
    if group_rule not in GROUP_RULES:
        raise ValueError(f"unknown group rule {group_rule!r}: choose one of {GROUP_RULES}")
    specs = conv.specs
    hi = DEFAULT_HI
    index = {id(sp): i for i, sp in enumerate(specs)}
    weights = [i for i, sp in enumerate(specs) if sp.kind in ("conv", "dense")]
    head = weights[-1]
    params: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(specs)
    for j, i in enumerate(weights):
        sp = specs[i]
        assert sp.w is not None and sp.b is not None
        w, b = sp.w.astype(np.float64), sp.b.astype(np.float64)
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise OnnxImportError(f"node {sp.node!r}: its weights or bias hold NaN or inf")
        if j == 0:
            w, b = fold_input(sp, w, b, alpha, beta, hi, conv.notes)
        params[i] = (w, b)
    _, outs = run_specs(specs, params, x01_cal * hi)
    folded_acc = None
    if folded:  # the folded float network on the test set (the graph's accuracy but for folds)
        correct = 0
        for j in range(0, len(dataset.x_test), 500):
            x01 = dataset.preprocessing.unit(dataset.x_test[j : j + 500])
            logits, _ = run_specs(specs, params, x01 * hi)
            correct += int(np.sum(logits.argmax(axis=1) == dataset.y_test[j : j + 500]))
        folded_acc = correct / max(len(dataset.x_test), 1)
    # the tensor of each spec: a weight layer's output is its activation (the act after it)
    # or its pair; pools and flatten keep their input's tensor (and gauge)
    groups = _Groups()
    tensor: dict[int, int] = {}  # spec index -> the spec index naming its activation tensor
    ranges: dict[int, float] = {}
    vals: dict[int, np.ndarray] = {}
    pos: dict[int, np.ndarray] = {}  # each tensor's values on its grid (relu'd, capped)
    cur = -1  # the input
    for i, sp in enumerate(specs):
        if sp.kind in ("conv", "dense"):
            if i == head:
                break
            nxt = specs[i + 1]
            z = outs[i]
            if nxt.kind == "add":  # a pair: relu(z) and relu(-z) on one grid
                vals[i] = np.concatenate([z.ravel(), -z.ravel()])
            else:
                vals[i] = z.ravel()
            r = act_range(vals[i], a_bits, method)
            pos[i] = np.maximum(vals[i][:: max(1, vals[i].size // 20_000)], 0.0)
            if nxt.kind != "add":
                if nxt.cap is not None:
                    r = min(r, nxt.cap * (1 << a_bits) / ((1 << a_bits) - 1))
                    pos[i] = np.minimum(pos[i], nxt.cap)
            ranges[i] = r if r > 0 else 1.0
            cur = i
        elif sp.kind == "add":
            assert sp.source is not None
            vals[i] = outs[i].ravel()
            r = act_range(vals[i], a_bits, method)
            pos[i] = vals[i][:: max(1, vals[i].size // 20_000)]
            ranges[i] = r if r > 0 else 1.0
            groups.union(i, cur)
            groups.union(i, tensor[index[id(sp.source)]])
            cur = i
        tensor[i] = cur
    big: dict[int, float] = {}
    members: dict[int, list[int]] = {}
    for i, r in ranges.items():
        root = groups.find(i)
        big[root] = max(big.get(root, 0.0), r)
        members.setdefault(root, []).append(i)
    tied = scheme == "global"  # per-layer: every tensor its own grid, no gauge
    if tied and method == "mse" and group_rule == "joint":
        for root, ts in members.items():
            if len(ts) > 1:
                big[root] = shared_act_range([pos[t] for t in ts], a_bits, [big[root]]) or 1.0

    def gauge(t: int) -> float:
        return 1.0 if t < 0 or not tied else hi / big[groups.find(t)]

    def grid(t: int) -> ActGrid:
        """The activation grid of tensor ``t`` (-1: the input)."""
        if t < 0:
            return ActGrid(hi, in_bits)
        return ActGrid(hi if tied else ranges[t], a_bits)

    scaled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in weights:
        w, b = params[i]  # type: ignore[misc]
        c_in = gauge(tensor.get(i - 1, -1))  # the tensor the layer reads
        c_out = 1.0 if i == head else gauge(i)
        scaled[i] = (w * (c_out / c_in), b * c_out)
    hidden = [i for i in weights if i != head]
    b_bits_ = b_bits if b_bits is not None else default_bias_bits(w_bits)
    head_scale = 1.0
    if scheme == "global":
        pool = [scaled[i][0] for i in hidden] or [scaled[head][0]]
        w_max = _shared(pool, w_bits, method) or 1.0
        w_head = weight_range(scaled[head][0], w_bits, method)
        if w_head > 0 and hidden:
            head_scale = w_max / w_head
            scaled[head] = (scaled[head][0] * head_scale, scaled[head][1] * head_scale)
        w_maxes = {i: w_max for i in weights}
    else:
        w_maxes = {i: weight_range(scaled[i][0], w_bits, method) or 1.0 for i in weights}
    layers: list[mf.Layer] = []
    model_index: dict[int, int] = {}  # spec index -> index in the model's layers
    shape: tuple[int, ...] = tuple(conv.input_shape)
    clipped = 0
    for i, sp in enumerate(specs):
        if sp.kind in ("conv", "dense"):
            w, b = scaled[i]
            is_head = i == head
            if shadow is not None:
                shadow.append((w, b))
            in_grid = grid(tensor.get(i - 1, -1))
            w_grid = WeightGrid(w_maxes[i], w_bits)
            b_grid = BiasGrid.for_layer(w_grid, in_grid, b_bits_)
            clipped += int(np.sum(np.abs(b) > b_grid.b_max))
            n_w = w_grid.levels(w, False)
            n_b = b_grid.levels(b)
            pair = not is_head and specs[i + 1].kind == "add"
            if pair:
                n_w, n_b = np.concatenate([n_w, -n_w]), np.concatenate([n_b, -n_b])
            n_out = n_w.shape[0]
            kw: dict[str, Any] = {}
            if sp.kind == "conv":
                k = w.shape[2]
                kw = {"kernel": k, "stride": sp.stride, "padding": sp.padding}
                ho = (shape[1] + 2 * sp.padding - k) // sp.stride + 1
                wo = (shape[2] + 2 * sp.padding - k) // sp.stride + 1
                out_shape: tuple[int, ...] = (n_out, ho, wo)
            else:
                n_w = n_w.reshape(n_out, -1)
                out_shape = (n_out,)
            layers.append(
                mf.WeightLayer(
                    "conv2d" if sp.kind == "conv" else "dense",
                    "head" if is_head else "hidden",
                    shape,
                    out_shape,
                    np.zeros(n_out, dtype=bool),
                    **kw,
                    n_w=n_w.astype(np.int64),
                    n_b=n_b.astype(np.int64),
                    w_grid=w_grid,
                    in_grid=in_grid,
                    out_grid=None if is_head else grid(i),
                    b_grid=b_grid,
                )
            )
            shape = out_shape
            if is_head:
                model_index[i] = len(layers) - 1
                break
        elif sp.kind == "act":
            pass  # the ADC of the weight layer before it
        elif sp.kind in ("maxpool", "avgpool"):
            out: tuple[int, ...] = (shape[0], shape[1] // sp.size, shape[2] // sp.size)
            layers.append(mf.PoolLayer(sp.kind + "2d", sp.size, shape, out))
            shape = out
        elif sp.kind == "flatten":
            out = (int(np.prod(shape)),)
            layers.append(mf.FlattenLayer(shape, out))
            shape = out
        else:  # add
            assert sp.source is not None
            out = (shape[0] // 2, *shape[1:]) if sp.pair else shape
            src = model_index[index[id(sp.source)]]
            layers.append(mf.AddLayer(src, sp.pair, shape, out, grid(i)))
            shape = out
        model_index[i] = len(layers) - 1
    model = mf.Model(
        scheme,
        architecture,
        tuple(layers),
        dataset.preprocessing,
        hi,
        dataset.n_classes,
        info,
    )
    report = {
        "float_accuracy_folded": folded_acc,
        "method": method,
        "act_ranges": [ranges[i] for i in sorted(ranges)],
        "residual_groups": len(big),
        "group_ranges": [big[root] for root in sorted(big)],
        "w_max": [w_maxes[i] for i in weights],
        "hi": hi,
        "clipped_biases": clipped,
        "head_scale": head_scale,
    }
    return model, report


def network_from_model(
    model: mf.Model,
    shadow: list[tuple[np.ndarray, np.ndarray]] | None = None,
    arch: str = "imported",
) -> tuple[Network, dict[str, Any]]:
    """The trainer's network and scheme ranges (:meth:`~cosim.train.scheme.Scheme.state`)
    of a quantized deployed model, residual Adds included.

    Weight layers take ``shadow``'s float ``(W, b)`` (as :func:`build_residual_model` gives
    them) or, without it, the model's real weights ``n_w * u`` and biases ``n_b * step_b``; a
    pair (a hidden layer whose next layer is a ``pair`` Add) becomes one layer of ``C``
    outputs (the first half) followed by a :class:`~cosim.train.layers.SignedAct`. The
    ranges are the model's grids: ``w_max`` per weight layer, ``hi_x`` (input grids),
    ``hi_y`` (output grids; the head's entry unused), ``hi_add`` (the Adds' grids), so
    :func:`cosim.train.export.export_model` of the network under those ranges gives the
    model's grids back.
    """
    from cosim.train.layers import (
        ActQuant,
        Add,
        AvgPool2D,
        Conv2D,
        Dense,
        Flatten,
        Layer,
        MaxPool2D,
        SignedAct,
    )

    if not model.quantized:
        raise ValueError("network_from_model needs a quantized model")
    rng = np.random.default_rng(0)  # the initial weights are replaced
    layers: list[Layer] = []
    net_index: dict[int, int] = {}  # model layer -> the net layer giving its output
    w_max: list[float] = []
    hi_x: list[float] = []
    hi_y: list[float] = []
    hi_add: list[float] = []
    wi = 0
    for i, lay in enumerate(model.layers):
        if isinstance(lay, mf.WeightLayer):
            assert lay.w_grid is not None and lay.in_grid is not None
            nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
            pair = isinstance(nxt, mf.AddLayer) and nxt.pair
            n_out = lay.out_shape[0] // 2 if pair else lay.out_shape[0]
            wl: Dense | Conv2D
            if lay.kind == "conv2d":
                assert lay.kernel is not None
                wl = Conv2D(lay.in_shape[0], n_out, lay.kernel, rng, lay.stride, lay.padding)
            else:
                wl = Dense(lay.in_shape[0], n_out, rng)
            if shadow is not None:
                w, b = shadow[wi]
            else:
                w, b = lay.weights(), lay.biases()
            wl.params["W"] = np.asarray(w, dtype=np.float32)[:n_out].reshape(n_out, -1).copy()
            wl.params["b"] = np.asarray(b, dtype=np.float32)[:n_out].copy()
            layers.append(wl)
            w_max.append(lay.w_grid.w_max)
            hi_x.append(lay.in_grid.hi)
            hi_y.append(lay.out_grid.hi if lay.out_grid is not None else model.input_hi)
            if lay.is_hidden:
                layers.append(SignedAct(wl) if pair else ActQuant(wl))
            wi += 1
        elif isinstance(lay, mf.PoolLayer):
            layers.append(AvgPool2D(lay.size) if lay.kind == "avgpool2d" else MaxPool2D(lay.size))
        elif isinstance(lay, mf.FlattenLayer):
            layers.append(Flatten())
        else:
            assert isinstance(lay, mf.AddLayer) and lay.out_grid is not None
            layers.append(Add(net_index[lay.source], lay.pair))
            hi_add.append(lay.out_grid.hi)
        net_index[i] = len(layers) - 1
    net = Network(layers, model.preprocessing.input_shape, arch)
    state: dict[str, Any] = {"w_max": w_max, "hi_x": hi_x, "hi_y": hi_y}
    if hi_add:
        state["hi_add"] = hi_add
    return net, state
