"""Reading ONNX graphs: a NumPy float evaluator and the conversion to cosim's layers.

:func:`read_graph` reads an ``.onnx`` file (the ``onnx`` package, an optional extra:
``pip install cosim[onnx]``) into a :class:`Graph` of plain NumPy arrays; :func:`run_graph`
evaluates it in float64 NumPy (the imported graph's float reference; the tests check it
against ``onnx.reference.ReferenceEvaluator``); :func:`convert` maps a *sequential* graph onto
cosim's layer kinds (:class:`Spec` list) and :func:`build_imported` builds the trainer's
:class:`~cosim.train.network.Network` from it, with the input normalization folded into the
first weight layer.

Operators (docs/import.md has the table)
----------------------------------------
Conv (square kernel, equal strides, symmetric padding, group 1, dilation 1), Gemm, MatMul
(+ Add of a constant: the bias), BatchNormalization (folded into the preceding Conv, Gemm or
MatMul), Relu, Clip(0, m) (ReLU6 and the like: a ReLU whose ADC range is capped at ``m``),
MaxPool and AveragePool (square, stride = kernel, no padding: cosim's pools are
non-overlapping), GlobalAveragePool (square maps: one pool of the map's size) and ReduceMean
over the two spatial axes (PyTorch's dynamo exporter writes ``AdaptiveAvgPool2d(1)`` so), Flatten,
Reshape to ``(N, -1)`` (with its shape constant or computed by Shape/Gather/Unsqueeze/Concat
chains, which are folded to constants), Squeeze of 1x1 maps, Identity, Dropout, a trailing
Softmax/LogSoftmax (dropped: the arg-max is unchanged), and leading Sub/Div/Mul/Add of
constants (the input normalization, folded into the first weight layer).

Not supported (each a :class:`~cosim.errors.OnnxImportError` naming the node): residual Adds (two
data inputs) and any other branching, grouped or dilated convolutions, overlapping or padded
pools, non-square kernels, hidden weight layers without a ReLU after them, and every other
operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cosim.errors import OnnxImportError
from cosim.train.layers import (
    ActQuant,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
)
from cosim.train.network import Network

#: Operators the importer maps (data path) or folds (constant shape arithmetic).
SUPPORTED = (
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Relu",
    "Clip",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "Sub",
    "Div",
    "Mul",
    "Squeeze",
    "Identity",
    "Dropout",
    "Softmax",
    "LogSoftmax",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Concat",
    "Constant",
    "Cast",
    "QuantizeLinear",
    "DequantizeLinear",
)
_SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Cast", "Squeeze", "Reshape")
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_SUPPORTED_TEXT = ", ".join(SUPPORTED)
#: The batch size the constant folding of Shape chains assumes (any value works: a flatten
#: target ``(batch, -1)`` is recognized by its second entry).
_FOLD_BATCH = 1


@dataclass
class Node:
    """One ONNX node: ``op`` type, ``name``, input/output tensor names and attributes."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"node {self.name!r} ({self.op})"


@dataclass
class Graph:
    """An ONNX graph as NumPy: nodes in topological order, constants, one input, one output.

    ``input_shape`` is one sample's shape (the batch axis dropped); ``None`` entries are
    symbolic.
    """

    nodes: list[Node]
    consts: dict[str, np.ndarray]
    input_name: str
    input_shape: tuple[int | None, ...]
    output_name: str
    name: str = "onnx"
    meta: dict[str, str] = field(default_factory=dict)


def _need_onnx() -> Any:
    try:
        import onnx
    except ModuleNotFoundError:
        raise OnnxImportError(
            "reading ONNX files needs the onnx package: pip install 'onnx>=1.16' "
            "(or the extra: pip install -e '.[onnx]')"
        ) from None
    return onnx


def graph_from_proto(model: Any, name: str = "onnx") -> Graph:
    """A :class:`Graph` of an ``onnx.ModelProto``."""
    onnx = _need_onnx()
    from onnx import numpy_helper

    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise OnnxImportError(
            f"the graph has {len(inputs)} data inputs ({', '.join(i.name for i in inputs)}); "
            "cosim imports networks with exactly one input (the image or feature vector)"
        )
    if len(g.output) != 1:
        raise OnnxImportError(
            f"the graph has {len(g.output)} outputs; cosim imports networks with one output "
            "(the logits)"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple((d.dim_value if d.HasField("dim_value") else None) for d in dims)
    nodes = []
    for i, n in enumerate(g.node):
        attrs = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif a.type == onnx.AttributeProto.TENSOR:
                v = numpy_helper.to_array(v)
            elif isinstance(v, list):
                v = list(v)
            attrs[a.name] = v
        nodes.append(
            Node(n.op_type, n.name or f"#{i} {n.op_type}", list(n.input), list(n.output), attrs)
        )
    meta = {p.key: p.value for p in model.metadata_props}
    return Graph(nodes, consts, inputs[0].name, shape[1:], g.output[0].name, g.name or name, meta)


def read_graph(path: str | Path) -> Graph:
    """Read an ``.onnx`` file into a :class:`Graph`."""
    onnx = _need_onnx()
    p = Path(path)
    if not p.is_file():
        raise OnnxImportError(f"ONNX file {p} does not exist or is not a file")
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # protobuf raises its own DecodeError, among others
        raise OnnxImportError(f"{p} is not a readable ONNX model: {exc}") from None
    return graph_from_proto(model, p.stem)


# ------------------------------------------------------------------------------ evaluator
def _pads(node: Node, nd: int = 2) -> list[int]:
    pads = list(node.attrs.get("pads", [0] * (2 * nd)))
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID"):
        raise OnnxImportError(f"{node.label()}: auto_pad {auto} is not supported; export with "
                              "explicit pads")  # fmt: skip
    return pads


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """``(N, C, Ho, Wo, kh, kw)`` windows of an NCHW batch."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _conv(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if int(node.attrs.get("group", 1)) != 1:
        raise OnnxImportError(f"{node.label()}: grouped convolutions are not supported")
    sh, sw = node.attrs.get("strides", [1, 1])
    t, left, bot, right = _pads(node)
    x = np.pad(x, ((0, 0), (0, 0), (t, bot), (left, right)))
    win = _windows(x, w.shape[2], w.shape[3], sh, sw)
    y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def _pool(node: Node, x: np.ndarray) -> np.ndarray:
    kh, kw = node.attrs["kernel_shape"]
    sh, sw = node.attrs.get("strides", [1, 1])
    if any(_pads(node)):
        raise OnnxImportError(f"{node.label()}: padded pooling is not supported")
    win = _windows(x, kh, kw, sh, sw)
    return win.max(axis=(4, 5)) if node.op == "MaxPool" else win.mean(axis=(4, 5))


def _axes(node: Node, args: list[Any], ndim: int) -> list[int]:
    axes = node.attrs.get("axes")
    if axes is None and len(args) > 1 and args[1] is not None:
        axes = [int(a) for a in np.asarray(args[1]).ravel()]
    return [a % ndim for a in (axes or [])]


def _clip_bounds(node: Node, args: list[Any]) -> tuple[float | None, float | None]:
    lo = node.attrs.get("min")
    hi = node.attrs.get("max")
    if len(args) > 1 and args[1] is not None:
        lo = float(np.asarray(args[1]))
    if len(args) > 2 and args[2] is not None:
        hi = float(np.asarray(args[2]))
    return lo, hi


def eval_node(node: Node, args: list[Any]) -> np.ndarray:
    """Evaluate one node on NumPy inputs (``None`` for an absent optional input)."""
    op, a = node.op, node.attrs
    x: Any = args[0] if args else None
    if op == "Constant":
        if "value" in a:
            return np.asarray(a["value"])
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in a:
                return np.asarray(a[key], dtype=np.float32 if "float" in key else np.int64)
        raise OnnxImportError(f"{node.label()}: unsupported Constant attribute {list(a)}")
    if op in ("Identity", "Dropout", "Cast"):
        return np.asarray(x)
    if op == "Shape":
        return np.asarray(np.shape(x), dtype=np.int64)
    if op == "Gather":
        return np.take(x, np.asarray(args[1]).astype(np.int64), axis=int(a.get("axis", 0)))
    if op == "Unsqueeze":
        out = np.asarray(x)
        raw = node.attrs.get("axes")
        if raw is None:
            raw = [int(v) for v in np.asarray(args[1]).ravel()]
        nd = out.ndim + len(raw)
        for ax in sorted(int(v) % nd for v in raw):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        out = np.asarray(x)
        axes = _axes(node, args, out.ndim)
        return out.squeeze(tuple(axes)) if axes else out.squeeze()
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in args], axis=int(a.get("axis", 0)))
    if op == "Reshape":
        target = [int(v) for v in np.asarray(args[1]).ravel()]
        shape = [x.shape[i] if (v == 0 and not a.get("allowzero", 0)) else v
                 for i, v in enumerate(target)]  # fmt: skip
        return np.reshape(x, shape)
    if op == "Flatten":
        ax = int(a.get("axis", 1)) % max(1, x.ndim)
        return x.reshape(int(np.prod(x.shape[:ax])), -1)
    if op in ("Add", "Sub", "Mul", "Div"):
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        return fn(x, args[1])
    if op == "Relu":
        return np.maximum(x, 0)
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return _qdq(node, x, args)
    if op == "Clip":
        lo, hi = _clip_bounds(node, args)
        return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    if op == "Conv":
        return _conv(node, x, args[1], args[2] if len(args) > 2 else None)
    if op == "Gemm":
        A = x.T if a.get("transA", 0) else x
        B = args[1].T if a.get("transB", 0) else args[1]
        y = float(a.get("alpha", 1.0)) * (A @ B)
        if len(args) > 2 and args[2] is not None:
            y = y + float(a.get("beta", 1.0)) * args[2]
        return y
    if op == "MatMul":
        return np.matmul(x, args[1])
    if op in ("MaxPool", "AveragePool"):
        return _pool(node, x)
    if op == "GlobalAveragePool":
        return x.mean(axis=(2, 3), keepdims=True)
    if op == "ReduceMean":
        axes = _axes(node, args, x.ndim)
        if not axes and a.get("noop_with_empty_axes", 0):
            return np.asarray(x)
        return x.mean(axis=tuple(axes) or None, keepdims=bool(a.get("keepdims", 1)))
    if op == "BatchNormalization":
        scale, bias, mean, var = args[1:5]
        sh = (1, -1) + (1,) * (x.ndim - 2)
        s = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        return (x - mean.reshape(sh)) * s.reshape(sh) + bias.reshape(sh)
    if op in ("Softmax", "LogSoftmax"):
        z = x - x.max(axis=int(a.get("axis", -1)), keepdims=True)
        lse = np.log(np.exp(z).sum(axis=int(a.get("axis", -1)), keepdims=True))
        return z - lse if op == "LogSoftmax" else np.exp(z - lse)
    raise _unsupported(node)


def _qdq(node: Node, x: np.ndarray, args: list[Any]) -> np.ndarray:
    """QuantizeLinear (round half to even, saturated to the zero point's integer type) or
    DequantizeLinear, per tensor or along ``axis``."""
    scale = np.asarray(args[1], dtype=np.float64)
    zp = np.asarray(args[2]) if len(args) > 2 and args[2] is not None else np.uint8(0)
    if scale.ndim == 1 and scale.size > 1:
        ax = int(node.attrs.get("axis", 1)) % np.ndim(x)
        shape = [1] * np.ndim(x)
        shape[ax] = -1
        scale = scale.reshape(shape)
        zp = np.asarray(zp).reshape(shape)
    if node.op == "DequantizeLinear":
        return (np.asarray(x, np.float64) - zp.astype(np.float64)) * scale
    info = np.iinfo(zp.dtype)
    q = np.rint(np.asarray(x, np.float64) / scale) + zp.astype(np.float64)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def _unsupported(node: Node) -> OnnxImportError:
    return OnnxImportError(
        f"{node.label()} is not supported by the ONNX importer; supported operators: "
        f"{_SUPPORTED_TEXT}"
    )


def run_graph(g: Graph, x: np.ndarray) -> np.ndarray:
    """The graph's output on input batch ``x`` (NCHW or ``(N, F)``), in float64 NumPy."""
    env: dict[str, Any] = {k: np.asarray(v) for k, v in g.consts.items()}
    env[g.input_name] = np.asarray(x, dtype=np.float64)
    for node in g.nodes:
        args = [env[i] if i else None for i in node.inputs]
        env[node.outputs[0]] = eval_node(node, args)
    return np.asarray(env[g.output_name], dtype=np.float64)


# ------------------------------------------------------------------------------ conversion
@dataclass
class Spec:
    """One cosim layer of a converted graph.

    ``kind``: ``dense``, ``conv``, ``act``, ``avgpool``, ``maxpool``, ``flatten`` or ``add``
    (a residual Add: ``source`` the spec whose output it adds, ``pair`` when the other
    operand is a weight layer's signed output, ``relu`` when a ReLU follows); ``w``
    ``(out, in)`` or ``(out, C, k, k)`` and ``b`` for weight layers; ``cap`` the clip bound
    of an activation (Clip(0, m): ``m``; ReLU: None); ``node`` the ONNX node.
    """

    kind: str
    node: str
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    size: int = 0
    cap: float | None = None
    source: Spec | None = None  # an ``add``: the spec whose output is the skip operand
    pair: bool = False  # an ``add``: its other operand is the signed output of a weight layer
    relu: bool = False  # an ``add``: a ReLU follows it


@dataclass
class Converted:
    """A converted graph: layer specs, the leading affine map ``x_net = alpha * x_in + beta``
    (arrays of one sample's shape; ``None``: identity), and notes for the import report."""

    specs: list[Spec]
    alpha: np.ndarray | None
    beta: np.ndarray | None
    input_shape: tuple[int, ...]
    notes: list[str] = field(default_factory=list)


def _data_tensors(g: Graph) -> set[str]:
    """Tensors that depend on the input through the data path (not through Shape)."""
    data = {g.input_name}
    for n in g.nodes:
        if n.op == "Shape":
            continue
        if any(i in data for i in n.inputs):
            data.update(n.outputs)
    return data


def _residual(n: Node, data: set[str]) -> bool:
    """Whether ``n`` is a residual Add: an Add of exactly two data tensors."""
    return n.op == "Add" and len([i for i in n.inputs if i in data]) == 2


def _check_sequential(g: Graph, data: set[str]) -> None:
    """Refuse branching other than residual Adds (checked further by :func:`convert`)."""
    for n in g.nodes:
        ins = [i for i in n.inputs if i in data]
        if _residual(n, data):
            continue
        if n.op in ("Add", "Sum", "Sub", "Mul", "Concat") and len(ins) > 1:
            kind = "a residual connection" if n.op in ("Add", "Sum") else "a merge of branches"
            raise OnnxImportError(
                f"{n.label()} combines {len(ins)} data tensors ({', '.join(ins)}): {kind}. "
                "cosim imports sequential networks and residual Adds of two tensors only"
            )
    users: dict[str, list[Node]] = {}
    for n in g.nodes:
        if n.op == "Shape":
            continue
        for i in n.inputs:
            if i in data:
                users.setdefault(i, []).append(n)
    for t, us in users.items():
        if len(us) == 2 and any(_residual(u, data) for u in us):
            continue  # a skip connection's tensor: convert checks it lies on the path
        if len(us) > 1:
            raise OnnxImportError(
                f"tensor {t!r} feeds {len(us)} nodes ({', '.join(u.label() for u in us)}): "
                "branching graphs are not supported: cosim imports sequential networks and "
                "residual Adds with identity skips only (a projection shortcut, a Conv on the "
                "skip path, is not supported)"
            )


def _nonnegative(specs: list[Spec], cap: float | None) -> bool:
    """Whether the current tensor is already ``relu`` (and within ``cap``): the last layer
    other than a pool or flatten is an activation with a cap no larger."""
    for sp in reversed(specs):
        if sp.kind in ("maxpool", "avgpool", "flatten"):
            continue
        if sp.kind == "add":
            return sp.relu and cap is None
        return sp.kind == "act" and (cap is None or (sp.cap is not None and sp.cap <= cap))
    return False


def _square(node: Node, what: str, pair: list[int]) -> int:
    if len(pair) != 2 or pair[0] != pair[1]:
        raise OnnxImportError(f"{node.label()}: {what} {list(pair)} is not square; cosim's "
                              "layers use square kernels, strides and pools")  # fmt: skip
    return int(pair[0])


def _per_sample(c: np.ndarray, shape: tuple[int, ...], node: Node) -> np.ndarray:
    """A constant operand of the leading normalization broadcast to one sample's shape."""
    c = np.asarray(c, dtype=np.float64)
    if c.ndim == len(shape) + 1:
        if c.shape[0] != 1:
            raise OnnxImportError(f"{node.label()}: its constant has a batch axis of {c.shape[0]}")
        c = c[0]
    try:
        return np.broadcast_to(c, shape).astype(np.float64)
    except ValueError:
        raise OnnxImportError(
            f"{node.label()}: constant of shape {c.shape} does not broadcast to one sample {shape}"
        ) from None


def convert(g: Graph, sample_shape: tuple[int, ...]) -> Converted:
    """Map a sequential graph onto cosim layer specs (see the module docstring).

    Parameters
    ----------
    g
        The graph.
    sample_shape
        One sample's shape as the dataset gives it, ``(C, H, W)`` or ``(F,)``; it must agree
        with the graph's input where the graph fixes it.
    """
    want = tuple(g.input_shape)
    if len(want) != len(sample_shape) or any(
        w is not None and w != s for w, s in zip(want, sample_shape, strict=False)
    ):
        raise OnnxImportError(
            f"the graph's input {g.input_name!r} takes samples of shape "
            f"{tuple('?' if w is None else w for w in want)}, the dataset gives "
            f"{tuple(sample_shape)}; choose the dataset the network was trained on"
        )
    data = _data_tensors(g)
    if g.output_name not in data:
        raise OnnxImportError("the graph's output does not depend on its input")
    _check_sequential(g, data)
    consts: dict[str, Any] = dict(g.consts)
    shapes: dict[str, tuple[int, ...]] = {g.input_name: tuple(sample_shape)}
    specs: list[Spec] = []
    notes: list[str] = []
    alpha = np.ones(sample_shape)
    beta = np.zeros(sample_shape)
    affine = False
    cur = g.input_name
    ended: Node | None = None  # a trailing Softmax
    coded = False  # between a QuantizeLinear and its DequantizeLinear (integer codes)
    made_by: dict[str, Spec | None] = {g.input_name: None}  # path tensor: the spec ending it

    def last_weight() -> Spec | None:
        return specs[-1] if specs and specs[-1].kind in ("dense", "conv") else None

    for node in g.nodes:
        ins = [i for i in node.inputs if i in data]
        if node.op == "Shape":  # a constant: the batch axis, then the sample's static shape
            src = node.inputs[0]
            if src not in shapes:
                raise OnnxImportError(f"{node.label()}: the shape of {src!r} is not known")
            full = np.asarray((_FOLD_BATCH, *shapes[src]), np.int64)
            lo, hi = node.attrs.get("start", 0), node.attrs.get("end")
            consts[node.outputs[0]] = full[lo:hi]
            continue
        if not ins:  # constant arithmetic (shape chains): fold it
            if node.op not in (*_SHAPE_OPS, "Identity", "Add", "Sub", "Mul", "Div", *_QDQ_OPS):
                raise _unsupported(node)
            args = [consts.get(i) if i else None for i in node.inputs]
            consts[node.outputs[0]] = eval_node(node, args)
            continue
        if ended is not None:
            raise OnnxImportError(
                f"{node.label()} follows {ended.label()}; only the logits' Softmax may end "
                "the graph"
            )
        if _residual(node, data):
            _residual_add(node, ins, cur, specs, made_by, shapes)
            shapes[node.outputs[0]] = shapes[cur]
            cur = node.outputs[0]
            made_by[cur] = specs[-1]
            continue
        x = ins[0]
        if x != cur:  # cannot happen after _check_sequential, but say so if it does
            raise OnnxImportError(f"{node.label()} does not continue the network's single path")
        shape = shapes[cur]
        out = node.outputs[0]
        const_args = [consts.get(i) if i and i not in data else None for i in node.inputs]
        op = node.op
        new_shape = shape
        if op in ("Identity", "Dropout"):
            pass
        elif op in _QDQ_OPS or (op == "Clip" and coded):
            # fake quantization of an activation: the import sets its own grids (or takes a
            # cosim export's from its metadata), so the float network passes through it
            coded = op == "QuantizeLinear" or (coded and op == "Clip")
            note = "QuantizeLinear/DequantizeLinear on activations read as identity"
            if note not in notes:
                notes.append(note)
        elif op in ("Sub", "Div", "Mul", "Add") and not specs:
            # the leading normalization: fold into the first weight layer
            operand = const_args[1] if node.inputs[0] == x else const_args[0]
            if operand is None:
                raise OnnxImportError(f"{node.label()}: its other operand must be a constant")
            c = _per_sample(operand, shape, node)
            first = node.inputs[0] == x
            if op == "Sub":
                if first:
                    beta = beta - c
                else:
                    alpha, beta = -alpha, c - beta
            elif op == "Add":
                beta = beta + c
            elif op == "Mul":
                alpha, beta = alpha * c, beta * c
            else:
                if not first:
                    raise OnnxImportError(f"{node.label()}: dividing by the input is not linear")
                alpha, beta = alpha / c, beta / c
            affine = True
        elif op == "Add":
            lw = last_weight()
            bias = const_args[1] if node.inputs[0] == x else const_args[0]
            if lw is None or bias is None:
                raise OnnxImportError(
                    f"{node.label()}: an Add of a constant is folded only as the bias right "
                    "after a Gemm/MatMul/Conv"
                )
            assert lw.b is not None
            bias = np.asarray(bias, dtype=np.float64)
            if lw.kind == "conv":
                bias = bias.reshape(-1) if bias.size == lw.b.size else bias
            lw.b = lw.b + np.broadcast_to(bias.reshape(-1), lw.b.shape)
        elif op == "Conv":
            w = np.asarray(const_args[1], dtype=np.float64)
            if len(shape) != 3:
                raise OnnxImportError(f"{node.label()}: convolution of a feature vector")
            if int(node.attrs.get("group", 1)) != 1:
                raise OnnxImportError(
                    f"{node.label()}: grouped/depthwise convolutions (group "
                    f"{node.attrs['group']}) are not supported; cosim's convolutions use group 1"
                )
            if any(d != 1 for d in node.attrs.get("dilations", [1, 1])):
                raise OnnxImportError(f"{node.label()}: dilated convolutions are not supported")
            k = _square(node, "kernel", list(w.shape[2:]))
            s = _square(node, "strides", list(node.attrs.get("strides", [1, 1])))
            pads = _pads(node)
            if len(set(pads)) != 1:
                raise OnnxImportError(
                    f"{node.label()}: asymmetric padding {pads} is not supported; cosim pads "
                    "every side equally"
                )
            p = int(pads[0])
            b = const_args[2] if len(node.inputs) > 2 and node.inputs[2] else None
            bb = np.zeros(w.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
            specs.append(Spec("conv", node.name, w, bb, stride=s, padding=p))
            _, h, ww = shape
            new_shape = (w.shape[0], (h + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1)
        elif op in ("Gemm", "MatMul"):
            if len(shape) != 1:
                raise OnnxImportError(
                    f"{node.label()} takes a {len(shape) + 1}-D tensor; flatten it first "
                    "(Flatten or Reshape to (N, -1))"
                )
            wb = const_args[1]
            if wb is None:
                raise OnnxImportError(f"{node.label()}: its weights must be a constant")
            w = np.asarray(wb, dtype=np.float64)
            if op == "Gemm":
                if node.attrs.get("transA", 0):
                    raise OnnxImportError(f"{node.label()}: transA=1 is not supported")
                w = w if node.attrs.get("transB", 0) else w.T
                w = w * float(node.attrs.get("alpha", 1.0))
                cb = const_args[2] if len(node.inputs) > 2 and node.inputs[2] else None
                b = np.zeros(w.shape[0]) if cb is None else (
                    float(node.attrs.get("beta", 1.0))
                    * np.broadcast_to(np.asarray(cb, np.float64).reshape(-1), (w.shape[0],))
                )  # fmt: skip
            else:
                w = w.T
                b = np.zeros(w.shape[0])
            specs.append(Spec("dense", node.name, w, np.array(b, dtype=np.float64)))
            new_shape = (w.shape[0],)
        elif op == "BatchNormalization":
            lw = last_weight()
            if lw is None:
                raise OnnxImportError(
                    f"{node.label()}: batch normalization is folded only into a directly "
                    "preceding Conv, Gemm or MatMul"
                )
            assert lw.w is not None and lw.b is not None
            scale, bias, mean, var = (np.asarray(v, np.float64) for v in const_args[1:5])
            fac = scale / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
            lw.w = lw.w * fac.reshape((-1,) + (1,) * (lw.w.ndim - 1))
            lw.b = (lw.b - mean) * fac + bias
        elif op in ("Relu", "Clip"):
            cap = None
            if op == "Clip":
                lo, hi = _clip_bounds(node, const_args)
                if lo is None or lo != 0.0 or (hi is not None and not hi > 0):
                    raise OnnxImportError(
                        f"{node.label()}: Clip({lo}, {hi}) is not a ReLU-like clip; supported is"
                        " Clip(0, m) with m > 0 (ReLU6: m = 6), which maps to the ADC's clip"
                    )
                cap = hi
            act = Spec("act", node.name, cap=cap)
            if specs and specs[-1].kind == "add" and not specs[-1].relu:
                if op != "Relu":
                    raise OnnxImportError(
                        f"{node.label()}: a Clip after a residual Add is not supported; the Add's"
                        " output is clipped to the shared activation grid (use a Relu)"
                    )
                specs[-1].relu = True
            elif last_weight() is not None:
                specs.append(act)
            elif (
                len(specs) >= 2 and specs[-1].kind == "maxpool" and specs[-2].kind in ("dense",
                                                                                       "conv")
            ):  # fmt: skip
                specs.insert(len(specs) - 1, act)  # max pooling commutes with ReLU
                notes.append(f"{node.label()} moved before the max pool (they commute)")
            elif _nonnegative(specs, cap):
                pass  # a ReLU of what a ReLU (and pools) already made non-negative
            else:
                raise OnnxImportError(
                    f"{node.label()}: cosim's activation is the ADC after a weight layer; this "
                    f"{op} does not follow a Conv/Gemm/MatMul (optionally with BatchNormalization"
                    " and a max pool)"
                )
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"):
            if len(shape) != 3:
                raise OnnxImportError(f"{node.label()}: pooling of a feature vector")
            n_ch, h, ww = shape
            if op == "ReduceMean" and sorted(_axes(node, [None, *const_args[1:]], 4)) != [2, 3]:
                # PyTorch's dynamo exporter writes AdaptiveAvgPool2d(1) as this ReduceMean
                raise OnnxImportError(
                    f"{node.label()}: only a mean over the two spatial axes (a global average "
                    "pool) is supported"
                )
            if op in ("GlobalAveragePool", "ReduceMean"):
                if h != ww:
                    raise OnnxImportError(
                        f"{node.label()}: global average pooling of a {h}x{ww} map; cosim's pools"
                        " are square"
                    )
                k = h
            else:
                k = _square(node, "kernel", list(node.attrs["kernel_shape"]))
                st = _square(node, "strides", list(node.attrs.get("strides", [1, 1])))
                if st != k:
                    raise OnnxImportError(
                        f"{node.label()}: stride {st} differs from the kernel {k}; cosim's pools "
                        "are non-overlapping (stride = kernel)"
                    )
                if any(_pads(node)) or any(d != 1 for d in node.attrs.get("dilations", [1, 1])):
                    raise OnnxImportError(f"{node.label()}: padded or dilated pooling is not "
                                          "supported")  # fmt: skip
                if h % k or ww % k:
                    raise OnnxImportError(
                        f"{node.label()}: a {k}x{k} pool of a {h}x{ww} map leaves a remainder; "
                        "cosim's pools need sizes divisible by the kernel"
                    )
            kind = "maxpool" if op == "MaxPool" else "avgpool"
            if k > 1:
                specs.append(Spec(kind, node.name, size=k))
            new_shape = (n_ch, h // k, ww // k)
            if op == "ReduceMean" and not node.attrs.get("keepdims", 1):
                specs.append(Spec("flatten", node.name))
                new_shape = (n_ch,)
        elif op in ("Flatten", "Reshape", "Squeeze"):
            n_feat = int(np.prod(shape))
            if op == "Flatten":
                if int(node.attrs.get("axis", 1)) != 1:
                    raise OnnxImportError(f"{node.label()}: only Flatten(axis=1) is supported")
            elif op == "Reshape":
                tgt = const_args[1]
                if tgt is None:
                    raise OnnxImportError(f"{node.label()}: its target shape is not constant")
                t = [int(v) for v in np.asarray(tgt).ravel()]
                ok = len(t) == 2 and t[0] in (0, -1, _FOLD_BATCH) and t[1] in (-1, n_feat)
                if not ok and t[1:] != list(shape):
                    raise OnnxImportError(
                        f"{node.label()}: reshape of {shape} to {t} is not a flatten to "
                        "(N, -1); cosim supports reshapes that flatten only"
                    )
                if not ok:
                    t = []  # a no-op reshape
            else:
                axes = _axes(node, [None, *const_args[1:]], len(shape) + 1)
                if len(shape) != 3 or shape[1:] != (1, 1) or sorted(axes or [2, 3]) != [2, 3]:
                    raise OnnxImportError(
                        f"{node.label()}: only squeezing 1x1 maps to vectors is supported"
                    )
            if len(shape) == 3 and (op != "Reshape" or t):
                specs.append(Spec("flatten", node.name))
                new_shape = (n_feat,)
        elif op in ("Softmax", "LogSoftmax"):
            ended = node
            notes.append(f"{node.label()} dropped: it does not change the arg-max")
        else:
            raise _unsupported(node)
        shapes[out] = new_shape
        cur = out
        made_by[cur] = specs[-1] if specs else None
    if cur != g.output_name:
        raise OnnxImportError("the graph's output is not the end of its data path")
    weights = [i for i, s in enumerate(specs) if s.kind in ("dense", "conv")]
    if not weights:
        raise OnnxImportError("the graph has no Conv, Gemm or MatMul layer")
    for sp in specs:
        if sp.kind == "add" and not sp.relu:
            raise OnnxImportError(
                f"the residual Add node {sp.node!r} is not followed by a ReLU: on the chip the "
                "Add's output is an activation code on the shared grid (clipped at 0)"
            )
    for j, i in enumerate(weights):
        nxt = specs[i + 1] if i + 1 < len(specs) else None
        if nxt is not None and nxt.kind == "add" and nxt.pair and j < len(weights) - 1:
            continue  # a signed operand of a residual Add: two ADC columns (see AddLayer)
        if j < len(weights) - 1 and (nxt is None or nxt.kind != "act"):
            raise OnnxImportError(
                f"hidden layer node {specs[i].node!r} is not followed by a ReLU: cosim's hidden "
                "layers end in an ADC with the ReLU embedded (linear hidden layers are not "
                "supported)"
            )
        if j == len(weights) - 1:
            rest = [s for s in specs[i + 1 :] if s.kind != "flatten"]
            if rest:
                raise OnnxImportError(
                    f"the classifier head (node {specs[i].node!r}) must give the logits, but "
                    f"node {rest[0].node!r} ({rest[0].kind}) follows it"
                )
            specs = specs[: i + 1]
    if affine:
        if specs[0].kind == "conv" and len(sample_shape) == 3:
            for arr, name in ((alpha, "scale"), (beta, "offset")):
                if not np.allclose(arr, arr[:, :1, :1]):
                    raise OnnxImportError(
                        f"the leading normalization's {name} varies across pixels; only "
                        "per-channel normalization folds into a convolution"
                    )
        bad = next(sp for sp in specs if sp.kind != "flatten")
        if bad.kind not in ("conv", "dense"):
            raise OnnxImportError(
                f"the leading normalization must be followed by the first weight layer, not "
                f"node {bad.node!r} ({bad.kind})"
            )
    return Converted(
        specs,
        alpha if affine else None,
        beta if affine else None,
        tuple(sample_shape),
        notes,
    )


def _activation(sp: Spec | None, specs: list[Spec]) -> bool:
    """Whether the output of ``sp`` is an activation code (a ReLU, a relu'd Add, a pool or
    flatten of one): what a residual Add can read as its skip operand."""
    if sp is None:
        return False
    i = next(j for j, s in enumerate(specs) if s is sp)
    for s in reversed(specs[: i + 1]):
        if s.kind in ("maxpool", "avgpool", "flatten"):
            continue
        return s.kind == "act" or (s.kind == "add" and s.relu)
    return False


def _residual_add(
    node: Node,
    ins: list[str],
    cur: str,
    specs: list[Spec],
    made_by: dict[str, Spec | None],
    shapes: dict[str, tuple[int, ...]],
) -> None:
    """Append the spec of the residual Add ``node`` (inputs ``ins``, one of them ``cur``)."""
    if cur not in ins:
        raise OnnxImportError(f"{node.label()} does not continue the network's single path")
    skip = ins[1] if ins[0] == cur else ins[0]
    if skip == cur:
        raise OnnxImportError(f"{node.label()} adds a tensor to itself; not supported")
    if skip not in made_by:
        raise OnnxImportError(
            f"{node.label()}: its operand {skip!r} is computed on a separate branch (a "
            "projection shortcut?); cosim supports identity skips only: the Add's other "
            "operand must be an earlier activation of the main path"
        )
    src = made_by[skip]
    if src is None:
        raise OnnxImportError(
            f"{node.label()}: the skip operand is the network's input; cosim adds activations "
            "of the shared grid only (put a Conv before the first residual block)"
        )
    if not _activation(src, specs):
        raise OnnxImportError(
            f"{node.label()}: the skip operand {skip!r} is not an activation (a ReLU's "
            "output, or a residual block's): cosim adds codes of the activation grid"
        )
    if shapes[skip] != shapes[cur]:
        raise OnnxImportError(
            f"{node.label()}: adds {shapes[skip]} to {shapes[cur]}; the shapes must agree "
            "(broadcasting is not supported)"
        )
    last = specs[-1] if specs else None
    if last is not None and last.kind in ("conv", "dense"):
        pair = True
    elif _activation(last, specs):
        pair = False
    else:
        raise OnnxImportError(
            f"{node.label()}: its main operand must be a Conv/Gemm output (with batch norm) "
            "or an activation"
        )
    specs.append(Spec("add", node.name, source=src, pair=pair))


def input_affine(
    conv: Converted,
    mean: list[float] | None,
    std: list[float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, beta)`` with the network's input ``x_net = alpha * x01 + beta`` (arrays of
    one sample's shape): ``--input-mean``/``--input-std`` (per channel: ``x_in = (x01 -
    mean) / std``) followed by the graph's own leading Sub/Div/Mul/Add."""
    shape = conv.input_shape
    n_ch = shape[0]

    def per_channel(v: list[float] | None, default: float, flag: str) -> np.ndarray:
        if v is None:
            return np.full(shape, default)
        if len(v) not in (1, n_ch):
            raise OnnxImportError(f"{flag} has {len(v)} values; give 1 or one per channel ({n_ch})")
        arr = np.asarray(v, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1))
        return np.broadcast_to(arr, shape).astype(np.float64)

    m = per_channel(mean, 0.0, "--input-mean")
    s = per_channel(std, 1.0, "--input-std")
    if np.any(s == 0):
        raise OnnxImportError("--input-std must not be 0")
    a = np.ones(shape) if conv.alpha is None else conv.alpha
    b = np.zeros(shape) if conv.beta is None else conv.beta
    return a / s, b - a * m / s


def fold_input(
    sp: Spec,
    w: np.ndarray,
    b: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    input_hi: float,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """The first weight layer's ``(w, b)`` with the input map ``x_net = alpha * x01 + beta``
    folded in, for inputs ``x01 * input_hi`` (see :func:`build_imported`)."""
    if sp.kind == "conv":
        a_c, b_c = alpha[:, 0, 0], beta[:, 0, 0]
        b = b + np.einsum("ocij,c->o", w, b_c)
        w = w * a_c[None, :, None, None] / input_hi
        if sp.padding and np.any(b_c != 0):
            notes.append(
                f"the input offset folded into the padded first convolution "
                f"{sp.node!r} is exact only away from the image border"
            )
    else:
        b = b + w @ beta.reshape(-1)
        w = w * alpha.reshape(-1)[None, :] / input_hi
    return w, b


def build_imported(
    conv: Converted,
    alpha: np.ndarray,
    beta: np.ndarray,
    input_hi: float,
    name: str = "onnx",
) -> tuple[Network, list[float | None]]:
    """The trainer's :class:`Network` of a converted graph, its input ``x01 * input_hi``.

    The input map ``x_net = alpha * x01 + beta`` is folded into the first weight layer:
    ``W' = W * alpha / input_hi``, ``b' = b + W . beta``. For a padded first convolution with
    ``beta != 0`` the fold is exact only away from the border (the graph pads ``x_net`` with
    0, cosim pads ``x01`` with 0); the conversion notes it.

    Returns the network and the clip cap of every hidden activation (None: plain ReLU).
    """
    specs = conv.specs
    shape = Network._internal(conv.input_shape)
    layers: list[Layer] = []
    caps: list[float | None] = []
    rng = np.random.default_rng(0)  # shapes only: every weight is overwritten
    first = True
    for sp in specs:
        lay: Layer
        if sp.kind in ("dense", "conv"):
            assert sp.w is not None and sp.b is not None
            w, b = sp.w.astype(np.float64), sp.b.astype(np.float64)
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise OnnxImportError(f"node {sp.node!r}: its weights or bias hold NaN or inf")
            if first:
                w, b = fold_input(sp, w, b, alpha, beta, input_hi, conv.notes)
                first = False
            if sp.kind == "conv":
                lay = Conv2D(w.shape[1], w.shape[0], w.shape[2], rng, sp.stride, sp.padding)
            else:
                lay = Dense(w.shape[1], w.shape[0], rng)
            lay.params["W"] = w.reshape(w.shape[0], -1).astype(np.float32)
            lay.params["b"] = b.astype(np.float32)
        elif sp.kind == "act":
            src = layers[-1]
            assert isinstance(src, Dense | Conv2D)
            lay = ActQuant(src)
            caps.append(sp.cap)
        elif sp.kind == "avgpool":
            lay = AvgPool2D(sp.size)
        elif sp.kind == "maxpool":
            lay = MaxPool2D(sp.size)
        else:
            lay = Flatten()
        try:
            shape = lay.out_shape(shape)
        except ValueError as exc:
            raise OnnxImportError(f"node {sp.node!r}: {exc}") from None
        layers.append(lay)
    return Network(layers, conv.input_shape, f"onnx:{name}"), caps
