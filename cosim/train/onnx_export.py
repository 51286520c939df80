"""``cosim export``'s work: a deployed cosim model as an ONNX graph, float or QDQ-quantized.

The graph takes ``x01`` (the dataset's samples after :class:`cosim.quant.Preprocessing`,
in ``[0, 1]``, float32, ``(N,) + input_shape``) and returns the logits. The network's input
``x = x01 * input_hi`` is folded into the first weight layer (its weights times
``input_hi``), which is what ``cosim import`` assumes of a graph by default.

Float export (:func:`export_onnx` ``quantized=False``)
    Conv/Gemm with the **dequantized** weights and biases (``w = n_w * u``,
    ``b = n_b * step_b``; a float-scheme model's own weights), Relu after every hidden
    layer, MaxPool/AveragePool (kernel = stride = size) and Flatten. Activations are *not*
    re-quantized: the graph is the float network the integer levels define. A residual Add
    (:class:`~cosim.model.format.AddLayer`) is ``Relu(Add(x, s))``, ``s`` the output tensor
    of its ``source`` layer; a ``pair`` Add's hidden layer (levels ``[W; -W]``, ``[b; -b]``)
    is one Conv/Gemm of ``W``, ``b`` with no Relu, whose output ``z`` is the signed operand
    (``relu(z) - relu(-z)`` of the two halves, as :func:`cosim.model.forward.float_forward`).
Quantized export (``quantized=True``, quantized models only)
    The same layers with QuantizeLinear/DequantizeLinear (QDQ) around the activations and
    the weights as QDQ initializers: the input ``x01`` on the input grid (scale
    ``2**-in_bits``), every hidden layer's ReLU output on its output grid (scale
    ``step = hi / 2**a``, zero point 0, uint8, then ``Clip(0, 2**a - 1)`` on the uint8 codes),
    an average pool's output on the same grid; weights ``DequantizeLinear(n_w, u)`` (int8,
    int32 for 8-bit weights) and biases ``DequantizeLinear(n_b, step_b)`` (int32). A pair's
    signed operand ``z`` goes on its layer's grid as a signed code (int8 QuantizeLinear with
    the grid's step, ``Clip(-(2**a - 1), 2**a - 1)``; int16 and opset :data:`OPSET_WIDE` for
    ``a = 8``): the difference of the two halves' codes. An Add's operands are dequantized
    real values on their own grids, so their sum rescales each onto the Add's grid (the
    per-layer scheme's ``add_ratios``) and the Add's QDQ (uint8, ``Clip(0, 2**a - 1)``) after
    its Relu is the one rounding of :func:`cosim.quant.residual_add`.

Rounding: cosim rounds half up (``floor(t + 1/2)``), ONNX's QuantizeLinear half to even.
They differ only at exact ties. Every QuantizeLinear here divides by ``step * (1 -
2**-16)`` (:data:`TIE_SHRINK`) while its DequantizeLinear multiplies by ``step``: a
non-negative value ``t`` in steps becomes ``t (1 + 1.5e-5)``, which moves an exact tie above
the half (round half up) and leaves every value that is more than ``t * 1.5e-5`` below a
half where it was (a signed operand's negative ``t`` moves away from zero: half away from
zero, which is what the difference of a pair's two round-half-up codes gives). That makes
average pooling exact (its ``sum / n`` sits at least ``1/n`` from a half, ``n <= 256``) and
the input exact for cosim's datasets (``raw / 255`` and
``raw / 16`` never fall on a half of ``2**-in_bits``); a weight layer's requantization is
computed from float32 sums, so a code can differ where ``acc * scale`` lies within float32
rounding of a half (measured in docs/import.md).

The model's own metadata (the model file's ``meta``, grids in float64) is stored in the
graph's ``metadata_props`` under ``cosim.model``, with the unipolar masks under
``cosim.unipolar``: ``cosim import`` of an exported graph uses these grids instead of
calibrating (the levels are read back from the graph's weights), so a round trip keeps the
predictions exactly.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from cosim import __version__
from cosim.errors import CosimError
from cosim.model.format import AddLayer, FlattenLayer, Model, PoolLayer, WeightLayer
from cosim.model.io import model_arrays

#: ONNX opset the export uses (QuantizeLinear/DequantizeLinear with int32 biases, uint8 Clip).
OPSET = 19
#: The opset of a QDQ export with 8-bit signed operands (their codes need int16).
OPSET_WIDE = 21
#: QuantizeLinear's scale is ``step * (1 - TIE_SHRINK)``: exact ties round up (module doc).
TIE_SHRINK = 2.0**-16
META_KEY = "cosim.model"
UNIPOLAR_KEY = "cosim.unipolar"
KIND_KEY = "cosim.export"
INPUT_NAME = "x01"
OUTPUT_NAME = "logits"


class ExportError(CosimError, ValueError):
    """A model cannot be exported to ONNX (an unsupported layer or scheme)."""


def _need_onnx() -> Any:
    try:
        import onnx
    except ModuleNotFoundError:
        raise ExportError(
            "writing ONNX files needs the onnx package: pip install 'onnx>=1.16' "
            "(or the extra: pip install -e '.[onnx]')"
        ) from None
    return onnx


class _Builder:
    """Nodes and initializers of one graph, with fresh tensor names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0
        self.wide = False  # an int16 QuantizeLinear (opset 21)

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, value: Any) -> str:
        from onnx import numpy_helper

        n = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, [out], name=f"{stem}_{self.count}", **attrs)
        )
        return out

    def qdq_signed(self, x: str, step: float, bits: int, stem: str) -> str:
        """``x`` onto the signed grid ``k * step``, ``|k| <= 2**bits - 1`` (round half away
        from zero, as the difference of a pair's two ADC codes; int8, int16 for 8 bits)."""
        top = (1 << bits) - 1
        code = np.int8 if top <= 127 else np.int16
        q_scale = self.const(f"{stem}_qscale", np.float32(step * (1.0 - TIE_SHRINK)))
        dq_scale = self.const(f"{stem}_scale", np.float32(step))
        zp = self.const(f"{stem}_zero", code(0))
        k = self.node("QuantizeLinear", [x, q_scale, zp], f"{stem}_q")
        lo = self.const(f"{stem}_lo", code(-top))
        hi = self.const(f"{stem}_top", code(top))
        k = self.node("Clip", [k, lo, hi], f"{stem}_clip")
        self.wide = self.wide or code is np.int16
        return self.node("DequantizeLinear", [k, dq_scale, zp], f"{stem}_dq")

    def qdq(self, x: str, step: float, bits: int, stem: str) -> str:
        """``x`` onto the grid ``k * step``, ``k = 0 .. 2**bits - 1`` (round half up)."""
        q_scale = self.const(f"{stem}_qscale", np.float32(step * (1.0 - TIE_SHRINK)))
        dq_scale = self.const(f"{stem}_scale", np.float32(step))
        zp = self.const(f"{stem}_zero", np.uint8(0))
        k = self.node("QuantizeLinear", [x, q_scale, zp], f"{stem}_q")
        if bits < 8:
            lo = self.const(f"{stem}_lo", np.uint8(0))
            top = self.const(f"{stem}_top", np.uint8((1 << bits) - 1))
            k = self.node("Clip", [k, lo, top], f"{stem}_clip")
        return self.node("DequantizeLinear", [k, dq_scale, zp], f"{stem}_dq")


def _check_exportable(model: Model, quantized: bool) -> None:
    if quantized and not model.quantized:
        raise ExportError(
            f"--quantized needs a quantized model; this one has scheme {model.scheme!r} "
            "(float weights, no grids): export it without --quantized"
        )
    for i, lay in enumerate(model.layers):
        kind = getattr(lay, "kind", type(lay).__name__)
        if not isinstance(lay, WeightLayer | PoolLayer | FlattenLayer | AddLayer) or kind not in (
            "dense", "conv2d", "avgpool2d", "maxpool2d", "flatten", "add"
        ):  # fmt: skip
            raise ExportError(
                f"layer {i} of kind {kind!r} cannot be exported to ONNX; supported: dense, "
                "conv2d, avgpool2d, maxpool2d, flatten, add"
            )


def export_onnx(model: Model, quantized: bool = False) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (see the module docstring).

    Parameters
    ----------
    model
        A deployed model (any scheme for the float export; quantized for ``quantized``).
    quantized
        Put QuantizeLinear/DequantizeLinear pairs around the activations and the weights.

    Raises
    ------
    ExportError
        A float-scheme model with ``quantized``, or a layer kind ONNX export does not know.
    """
    onnx = _need_onnx()
    from onnx import TensorProto, helper

    _check_exportable(model, quantized)
    b = _Builder(onnx)
    x = INPUT_NAME
    act_grid: tuple[float, int] | None = None  # (step, bits) of the current tensor's grid
    prep = model.preprocessing
    if quantized:
        x = b.qdq(x, 2.0**-prep.in_bits, prep.in_bits, "input")
    sources = model.add_sources()
    saved: dict[int, str] = {}  # layer index -> its output tensor (read by a later Add)
    first = True
    for i, lay in enumerate(model.layers):
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        pair = isinstance(nxt, AddLayer) and nxt.pair
        if isinstance(lay, WeightLayer):
            gain = model.input_hi if first else 1.0  # x = x01 * input_hi, folded
            first = False
            shape = lay.weight_shape()
            half = shape[0] // 2 if pair else shape[0]  # a pair [W; -W]: W once
            shape = (half, *shape[1:])
            if quantized:
                assert lay.n_w is not None and lay.n_b is not None
                assert lay.w_grid is not None and lay.b_grid is not None
                big = int(np.abs(lay.n_w).max(initial=0)) > 127
                n_w = lay.n_w[:half].reshape(shape).astype(np.int32 if big else np.int8)
                w = b.node(
                    "DequantizeLinear",
                    [b.const(f"L{i}_nw", n_w),
                     b.const(f"L{i}_u", np.float32(lay.w_grid.unit * gain))],
                    f"L{i}_w",
                )  # fmt: skip
                bias = b.node(
                    "DequantizeLinear",
                    [b.const(f"L{i}_nb", lay.n_b[:half].astype(np.int32)),
                     b.const(f"L{i}_stepb", np.float32(lay.b_grid.step))],
                    f"L{i}_b",
                )  # fmt: skip
            else:
                w = b.const(
                    f"L{i}_w", (lay.weights()[:half] * gain).reshape(shape).astype(np.float32)
                )
                bias = b.const(f"L{i}_b", lay.biases()[:half].astype(np.float32))
            if lay.kind == "conv2d":
                p = int(lay.padding)
                x = b.node(
                    "Conv",
                    [x, w, bias],
                    f"L{i}_conv",
                    kernel_shape=[lay.kernel, lay.kernel],
                    strides=[lay.stride, lay.stride],
                    pads=[p, p, p, p],
                )
            else:
                x = b.node("Gemm", [x, w, bias], f"L{i}_gemm", transB=1)
            if pair:
                # the signed operand z = relu(z) - relu(-z) of the two halves: no Relu; its
                # code is the difference of the halves' codes, |k| <= 2**a - 1
                if quantized:
                    assert lay.out_grid is not None
                    x = b.qdq_signed(x, lay.out_grid.step, lay.out_grid.bits, f"L{i}_signed")
            elif lay.is_hidden:
                x = b.node("Relu", [x], f"L{i}_relu")
                if quantized:
                    assert lay.out_grid is not None
                    act_grid = (lay.out_grid.step, lay.out_grid.bits)
                    x = b.qdq(x, *act_grid, f"L{i}_act")
        elif isinstance(lay, AddLayer):
            # both operands are real values on their own grids (dequantized), so their sum
            # rescales each onto the Add's grid (add_ratios) in the one rounding of its QDQ
            x = b.node("Add", [x, saved[lay.source]], f"L{i}_add")
            x = b.node("Relu", [x], f"L{i}_relu")
            if quantized:
                assert lay.out_grid is not None
                act_grid = (lay.out_grid.step, lay.out_grid.bits)
                x = b.qdq(x, *act_grid, f"L{i}_act")
        elif isinstance(lay, PoolLayer):
            op = "MaxPool" if lay.kind == "maxpool2d" else "AveragePool"
            s = int(lay.size)
            x = b.node(op, [x], f"L{i}_pool", kernel_shape=[s, s], strides=[s, s])
            if quantized and op == "AveragePool" and act_grid is not None:
                x = b.qdq(x, *act_grid, f"L{i}_pool")  # cosim re-quantizes the average
        else:
            x = b.node("Flatten", [x], f"L{i}_flatten", axis=1)
        if i in sources:
            saved[i] = x
    b.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="logits"))
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", *prep.input_shape])
    out = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", model.n_classes])
    graph = helper.make_graph(b.nodes, _graph_name(model), [inp], [out], b.inits)
    proto = helper.make_model(
        graph,
        producer_name="cosim",
        producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET_WIDE if b.wide else OPSET)],
    )
    # readable by onnxruntime releases of 2024 (opset 21, for int16 codes, needs IR 10)
    proto.ir_version = min(proto.ir_version, 10 if b.wide else 9)
    meta, arrays = model_arrays(model)
    uni = {k: v.astype(int).tolist() for k, v in arrays.items() if k.endswith(".unipolar")}
    helper.set_model_props(
        proto,
        {
            META_KEY: json.dumps(meta, default=float),
            UNIPOLAR_KEY: json.dumps(uni),
            KIND_KEY: "quantized" if quantized else "float",
        },
    )
    onnx.checker.check_model(proto)
    return proto


def _graph_name(model: Model) -> str:
    arch = model.architecture.removeprefix("onnx:")
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in arch) or "cosim"


def dequantized(model: Model) -> Model:
    """The float-scheme model of ``model``'s real weights and biases (``n_w * u``, ``n_b *
    step_b``): what the float export computes (:func:`cosim.model.forward.float_forward`)."""
    from dataclasses import replace

    layers = tuple(
        WeightLayer(
            lay.kind,
            lay.role,
            lay.in_shape,
            lay.out_shape,
            lay.unipolar,
            lay.kernel,
            lay.stride,
            lay.padding,
            w=lay.weights(),
            b=lay.biases(),
        )
        if isinstance(lay, WeightLayer)
        else lay
        for lay in model.layers
    )
    return replace(model, scheme="float", layers=layers)


def run_onnx(proto: Any, x01: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Logits of an ONNX model on ``x01`` by ``onnx.reference.ReferenceEvaluator`` (float32)."""
    _need_onnx()
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(proto)
    outs: list[np.ndarray] = []
    for i in range(0, len(x01), batch):
        feeds = {INPUT_NAME: np.asarray(x01[i : i + batch], dtype=np.float32)}
        outs.append(np.asarray(next(iter(ev.run(None, feeds)))))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


_SPEC_KINDS = {"dense": "dense", "conv": "conv2d", "avgpool": "avgpool2d",
               "maxpool": "maxpool2d", "flatten": "flatten", "add": "add"}  # fmt: skip


def model_from_export(
    meta_props: dict[str, str], specs: list[Any], preprocessing: Any, name: str = "onnx"
) -> Model:
    """The quantized model a ``cosim export`` graph came from, with its own grids.

    ``meta_props`` are the graph's ``metadata_props`` (:data:`META_KEY`: the model file's
    metadata, :data:`UNIPOLAR_KEY`: the unipolar masks); ``specs`` the importer's layer
    specs of the graph (:func:`cosim.train.onnx_graph.convert`): the levels are read back
    from the graph's weights, ``n_w = rint(w / u)``, ``n_b = rint(b / step_b)`` (the first
    layer's weights divided by ``input_hi``, folded by the export), and must lie on the grid;
    a pair Add's hidden layer gets ``[n_w; -n_w]``, ``[n_b; -n_b]`` from the graph's ``W``, and
    every Add's source and pair flag must be the graph's.
    ``preprocessing`` (the dataset's, which defines ``x01``) replaces the exported one, its
    ``in_bits`` kept.

    Raises
    ------
    ExportError
        The metadata is not a quantized cosim model, or the graph's layers or weights do not
        match it (the graph was edited after the export).
    """
    from pathlib import Path

    from cosim.errors import ModelFileError
    from cosim.model.validate import build_model

    try:
        meta = json.loads(meta_props[META_KEY])
        uni = json.loads(meta_props.get(UNIPOLAR_KEY, "{}"))
        layers = meta["layers"]
        if meta.get("scheme") == "float":
            raise ExportError("the exported model is a float-scheme model (no grids)")
        kinds = [lay["kind"] for lay in layers]
        hi = float(meta["input_hi"])
        prep = dict(preprocessing.to_dict(), in_bits=meta["preprocessing"]["in_bits"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"its {META_KEY} metadata is not a cosim model ({exc})") from None
    layer_specs = [s for s in specs if s.kind != "act"]  # one per model layer
    got = [_SPEC_KINDS[s.kind] for s in layer_specs]
    if got != kinds:
        raise ExportError(f"the graph's layers {got} differ from the exported model's {kinds}")
    at: dict[int, int] = {}  # spec -> the model layer whose output it gives (an act: its layer's)
    j = -1
    for s in specs:
        j += s.kind != "act"
        at[id(s)] = j
    for j, (sp, lay) in enumerate(zip(layer_specs, layers, strict=True)):
        if sp.kind == "add" and (
            at.get(id(sp.source)) != lay.get("source") or sp.pair != lay.get("pair")
        ):
            raise ExportError(f"the graph's Add {sp.node!r} differs from the model's layer {j}")
    arrays: dict[str, np.ndarray] = {}
    weight_specs = iter(s for s in specs if s.kind in ("dense", "conv"))
    first = True
    for i, lay in enumerate(layers):
        if lay["kind"] not in ("dense", "conv2d"):
            continue
        sp = next(weight_specs)
        try:
            u = float(lay["w_grid"]["w_max"]) / ((1 << int(lay["w_grid"]["bits"])) - 1)
            step_b = u * float(lay["in_grid"]["hi"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ExportError(f"layer {i}'s grids in the metadata are incomplete ({exc})") from None
        w = np.asarray(sp.w, np.float64) / (hi if first else 1.0)
        first = False
        t_w, t_b = w / u, np.asarray(sp.b, np.float64) / step_b
        n_w, n_b = np.rint(t_w), np.rint(t_b)
        off = max(float(np.abs(t_w - n_w).max(initial=0)), float(np.abs(t_b - n_b).max(initial=0)))
        if off > 1e-3:
            raise ExportError(
                f"node {sp.node!r}: its weights lie {off:.3g} levels off the exported grid"
            )
        nxt = layers[i + 1] if i + 1 < len(layers) else {}
        if nxt.get("kind") == "add" and nxt.get("pair"):  # the graph holds W of [W; -W]
            n_w, n_b = np.concatenate([n_w, -n_w]), np.concatenate([n_b, -n_b])
        arrays[f"L{i}.n_w"] = n_w.astype(np.int16)
        arrays[f"L{i}.n_b"] = n_b.astype(np.int32)
        arrays[f"L{i}.unipolar"] = np.asarray(uni.get(f"L{i}.unipolar", []), dtype=bool)
    meta = dict(meta, preprocessing=prep)
    try:
        return build_model(Path(name), meta, arrays)
    except ModelFileError as exc:
        raise ExportError(f"the exported model does not rebuild: {exc}") from None
