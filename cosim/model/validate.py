"""Metadata to :class:`~cosim.model.format.Model`: every field of a model file type-checked.

:func:`build_model` is what :func:`cosim.model.io.load_model` calls once the archive is read
and its ``meta`` JSON parsed: each field is read through :class:`Fields`, which names the
field in the :class:`~cosim.errors.ModelFileError` it raises (``layers[2].w_grid.bits``),
then every layer's geometry, arrays and grids, and the chain of shapes, are checked.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import ModelFileError
from cosim.fileio import error_text, show_path
from cosim.model.format import (
    LAYER_KINDS,
    SCHEMES,
    AddLayer,
    FlattenLayer,
    Layer,
    Model,
    PoolLayer,
    WeightLayer,
)
from cosim.quant import (
    MAX_BIAS_BITS,
    MAX_BITS,
    MIN_BIAS_BITS,
    MIN_BITS,
    ActGrid,
    BiasGrid,
    Preprocessing,
    WeightGrid,
)

#: Bounds on what the metadata may describe (far beyond any model ``cosim train`` writes).
MAX_LAYERS = 1000
MAX_DIM = 1 << 20
MAX_ELEMENTS = 1 << 31
MAX_CLASSES = 1 << 20
#: Real-valued ranges (grid ranges, input_hi, preprocessing scale/offset) must lie within
#: ``[1 / MAX_RANGE, MAX_RANGE]`` (offsets: ``|offset| <= MAX_RANGE``), so no forward overflows.
MAX_RANGE = 1e12


def model_error(path: Path, msg: str) -> ModelFileError:
    """The one-line error for a problem ``msg`` of the model file ``path``."""
    return ModelFileError(f"model file {show_path(path)}: {msg}")


def brief(exc: object, limit: int = 160) -> str:
    """One short line describing ``exc`` (an exception or a text) for an error message."""
    if isinstance(exc, BaseException):
        return error_text(exc, limit)
    return error_text(ValueError(str(exc)), limit)


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (ASCII), for one-line error messages."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_model(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
    """The model that ``meta`` (parsed JSON) and ``arrays`` of file ``path`` describe.

    Raises
    ------
    ModelFileError
        For a field of the wrong type or range, an inconsistent geometry, array or grid.
    """
    return _build(Fields(path), meta, arrays)


class Fields:
    """Typed reads of metadata fields; every mismatch is a ModelFileError naming the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, msg: str) -> ModelFileError:
        return model_error(
            self.path,
            f"metadata field {where} {msg}; the file is corrupt or was not written by cosim",
        )

    def get(self, d: dict[str, Any], key: str, where: str) -> Any:
        if key not in d:
            return self._missing(where)
        return d[key]

    def _missing(self, where: str) -> Any:
        raise model_error(
            self.path, f"metadata lacks field {where}; the file is corrupt or not from cosim"
        )

    def table(self, d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        v = self.get(d, key, where)
        if not isinstance(v, dict):
            raise self.fail(where, f"must be an object, got {short(v)}")
        return v

    def text(self, v: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
        if choices is not None:
            if not isinstance(v, str) or v not in choices:
                raise self.fail(where, f"must be one of {', '.join(choices)}, got {short(v)}")
            return v
        if not isinstance(v, str) or not v or len(v) > 200 or not v.isprintable():
            raise self.fail(where, f"must be a short printable string, got {short(v)}")
        try:
            v.encode("utf-8")
        except UnicodeError:
            raise self.fail(where, f"is not valid Unicode text, got {short(v)}") from None
        return v

    def integer(self, v: Any, where: str, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(where, f"must be an integer in {lo}..{hi}, got {short(v)}")
        return v

    def number(self, v: Any, where: str, lo: float, hi: float, what: str = "") -> float:
        """A JSON number (not a bool, a string or null) in ``[lo, hi]``; NaN and inf fail."""
        ok = not isinstance(v, bool) and isinstance(v, int | float)
        if ok:
            try:
                x = float(v)
            except OverflowError:  # an integer of hundreds of digits
                ok = False
            else:
                ok = math.isfinite(x) and lo <= x <= hi
        if not ok:
            raise self.fail(
                where, f"must be {what or 'a number'} in [{lo:g}, {hi:g}], got {short(v)}"
            )
        return x

    def positive(self, v: Any, where: str) -> float:
        return self.number(v, where, 1.0 / MAX_RANGE, MAX_RANGE, "a positive number")

    def shape(self, v: Any, where: str, ndim: tuple[int, ...] = (1, 3)) -> tuple[int, ...]:
        if not isinstance(v, list) or len(v) not in ndim:
            n = " or ".join(str(k) for k in ndim)
            raise self.fail(where, f"must be a list of {n} sizes, got {short(v)}")
        out = tuple(self.integer(s, f"{where}[{j}]", 1, MAX_DIM) for j, s in enumerate(v))
        if math.prod(out) > MAX_ELEMENTS:
            raise self.fail(where, f"describes more than {MAX_ELEMENTS} values: {out}")
        return out

    def act_grid(self, d: dict[str, Any], key: str, where: str) -> ActGrid:
        g = self.table(d, key, where)
        hi = self.positive(self.get(g, "hi", f"{where}.hi"), f"{where}.hi")
        b = self.integer(self.get(g, "bits", f"{where}.bits"), f"{where}.bits", MIN_BITS, MAX_BITS)
        return ActGrid(hi=hi, bits=b)

    def weight_grid(self, d: dict[str, Any], key: str, where: str) -> WeightGrid:
        g = self.table(d, key, where)
        w_max = self.positive(self.get(g, "w_max", f"{where}.w_max"), f"{where}.w_max")
        b = self.integer(self.get(g, "bits", f"{where}.bits"), f"{where}.bits", MIN_BITS, MAX_BITS)
        return WeightGrid(w_max=w_max, bits=b)

    def bias_grid(self, d: dict[str, Any], key: str, where: str) -> BiasGrid:
        g = self.table(d, key, where)
        step = self.positive(self.get(g, "step", f"{where}.step"), f"{where}.step")
        b = self.integer(
            self.get(g, "bits", f"{where}.bits"), f"{where}.bits", MIN_BIAS_BITS, MAX_BIAS_BITS
        )
        return BiasGrid(step=step, bits=b)


def _preprocessing(f: Fields, meta: dict[str, Any]) -> Preprocessing:
    p = f.table(meta, "preprocessing", "preprocessing")
    offset = f.number(
        f.get(p, "offset", "preprocessing.offset"), "preprocessing.offset", -MAX_RANGE, MAX_RANGE
    )
    scale = f.positive(f.get(p, "scale", "preprocessing.scale"), "preprocessing.scale")
    in_bits = f.integer(
        f.get(p, "in_bits", "preprocessing.in_bits"), "preprocessing.in_bits", MIN_BITS, MAX_BITS
    )
    shape = f.shape(
        f.get(p, "input_shape", "preprocessing.input_shape"), "preprocessing.input_shape"
    )
    return Preprocessing(offset=offset, scale=scale, in_bits=in_bits, input_shape=shape)


def _info(f: Fields, meta: dict[str, Any]) -> dict[str, Any]:
    """The training metadata: free-form, but the fields cosim reads must have their types."""
    if "info" not in meta:
        return {}
    info = f.table(meta, "info", "info")
    if "dataset" in info:  # a dataset spec; a path in it may hold undecodable bytes
        ds = info["dataset"]
        ok = isinstance(ds, str) and 0 < len(ds) <= 4096 and "\x00" not in ds
        if ok:
            try:
                ds.encode("utf-8", "surrogateescape")
            except UnicodeError:
                ok = False
        if not ok:
            raise f.fail("info.dataset", f"must be a dataset spec (a string), got {short(ds)}")
    if "test_accuracy" in info:
        f.number(info["test_accuracy"], "info.test_accuracy", 0.0, 1.0, "a fraction")
    if "epochs_trained" in info:
        f.integer(info["epochs_trained"], "info.epochs_trained", 0, 10**9)
    if "config" in info:
        f.table(info, "config", "info.config")
    return info


def _geometry(f: Fields, g: dict[str, Any], i: int, kind: str) -> tuple[tuple, tuple, dict]:
    """Input and output shapes of layer ``i`` and its conv/pool parameters, checked to agree."""
    w = f"layers[{i}]"
    three = (3,)
    if kind == "flatten":
        ins = f.shape(f.get(g, "in_shape", f"{w}.in_shape"), f"{w}.in_shape")
        outs = f.shape(f.get(g, "out_shape", f"{w}.out_shape"), f"{w}.out_shape", (1,))
        if outs != (math.prod(ins),):
            raise f.fail(f"{w}.out_shape", f"{list(outs)} is not the flattened {list(ins)}")
        return ins, outs, {}
    if kind == "add":
        ins = f.shape(f.get(g, "in_shape", f"{w}.in_shape"), f"{w}.in_shape")
        outs = f.shape(f.get(g, "out_shape", f"{w}.out_shape"), f"{w}.out_shape")
        source = f.integer(f.get(g, "source", f"{w}.source"), f"{w}.source", 0, max(i - 1, 0))
        if source >= i:
            raise f.fail(f"{w}.source", f"{source} is not an earlier layer")
        pair = f.get(g, "pair", f"{w}.pair")
        if type(pair) is not bool:
            raise f.fail(f"{w}.pair", f"must be true or false, got {short(pair)}")
        want = (2 * outs[0], *outs[1:]) if pair else outs
        if ins != want:
            raise f.fail(
                f"{w}.out_shape",
                f"{list(outs)} does not follow from input {list(ins)} (pair: {pair})",
            )
        return ins, outs, {"source": source, "pair": pair}
    if kind == "dense":
        ins = f.shape(f.get(g, "in_shape", f"{w}.in_shape"), f"{w}.in_shape", (1,))
        outs = f.shape(f.get(g, "out_shape", f"{w}.out_shape"), f"{w}.out_shape", (1,))
        return ins, outs, {}
    ins = f.shape(f.get(g, "in_shape", f"{w}.in_shape"), f"{w}.in_shape", three)
    outs = f.shape(f.get(g, "out_shape", f"{w}.out_shape"), f"{w}.out_shape", three)
    c, h, wd = ins
    if kind in ("avgpool2d", "maxpool2d"):
        size = f.integer(f.get(g, "size", f"{w}.size"), f"{w}.size", 1, min(h, wd))
        if h % size or wd % size or outs != (c, h // size, wd // size):
            raise f.fail(
                f"{w}.out_shape",
                f"{list(outs)} is not {list(ins)} pooled by {size}x{size} (sizes must divide)",
            )
        return ins, outs, {"size": size}
    kernel = f.integer(f.get(g, "kernel", f"{w}.kernel"), f"{w}.kernel", 1, 1024)
    stride = f.integer(f.get(g, "stride", f"{w}.stride"), f"{w}.stride", 1, 1024)
    padding = f.integer(f.get(g, "padding", f"{w}.padding"), f"{w}.padding", 0, 1024)
    if kernel > min(h, wd) + 2 * padding:
        raise f.fail(f"{w}.kernel", f"{kernel} is larger than the padded input {list(ins)}")
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (wd + 2 * padding - kernel) // stride + 1
    if outs[1:] != (ho, wo):
        raise f.fail(
            f"{w}.out_shape",
            f"{list(outs)} does not follow from input {list(ins)}, kernel {kernel}, stride "
            f"{stride}, padding {padding} (expected height/width {ho}x{wo})",
        )
    return ins, outs, {"kernel": kernel, "stride": stride, "padding": padding}


def _build(f: Fields, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
    path = f.path
    scheme = f.text(f.get(meta, "scheme", "scheme"), "scheme", SCHEMES)
    quantized = scheme != "float"
    architecture = f.text(f.get(meta, "architecture", "architecture"), "architecture")
    n_classes = f.integer(f.get(meta, "n_classes", "n_classes"), "n_classes", 1, MAX_CLASSES)
    input_hi = f.positive(f.get(meta, "input_hi", "input_hi"), "input_hi")
    prep = _preprocessing(f, meta)
    info = _info(f, meta)
    layers_meta = f.get(meta, "layers", "layers")
    if not isinstance(layers_meta, list) or not 1 <= len(layers_meta) <= MAX_LAYERS:
        raise f.fail(
            "layers", f"must be a list of 1..{MAX_LAYERS} layers, got {short(layers_meta)}"
        )
    layers: list[Layer] = []
    for i, g in enumerate(layers_meta):
        w = f"layers[{i}]"
        if not isinstance(g, dict):
            raise f.fail(w, f"must be an object, got {short(g)}")
        kind = f.text(f.get(g, "kind", f"{w}.kind"), f"{w}.kind", LAYER_KINDS)
        ins, outs, kw = _geometry(f, g, i, kind)
        if kind in ("avgpool2d", "maxpool2d"):
            layers.append(PoolLayer(kind, kw["size"], ins, outs))
            continue
        if kind == "flatten":
            layers.append(FlattenLayer(ins, outs))
            continue
        if kind == "add":
            grid = None
            if quantized:
                grid = f.act_grid(g, "out_grid", f"{w}.out_grid")
            elif "out_grid" in g:
                raise f.fail(f"{w}.out_grid", "a float-scheme model has no grids")
            layers.append(AddLayer(kw["source"], kw["pair"], ins, outs, grid))
            continue
        role = f.text(f.get(g, "role", f"{w}.role"), f"{w}.role", ("hidden", "head"))
        uni = arrays.get(f"L{i}.unipolar")
        if uni is None or uni.dtype != bool or uni.shape != (outs[0],):
            raise model_error(path, f"layer {i}: missing or malformed unipolar mask")
        if quantized:
            lay = _quantized_layer(f, g, i, kind, role, ins, outs, uni, kw, arrays)
        else:
            w_arr, b_arr = arrays.get(f"L{i}.w"), arrays.get(f"L{i}.b")
            if w_arr is None or b_arr is None:
                raise model_error(path, f"layer {i}: float weights w/b are missing")
            if w_arr.dtype.kind != "f" or b_arr.dtype.kind != "f":
                raise model_error(
                    path, f"layer {i}: float weights w/b are not floating-point arrays"
                )
            lay = WeightLayer(kind, role, ins, outs, uni, **kw, w=w_arr, b=b_arr)
            _check_array_shapes(path, i, lay, w_arr, b_arr)
            if not (np.all(np.isfinite(w_arr)) and np.all(np.isfinite(b_arr))):
                raise model_error(path, f"layer {i}: weights hold NaN/inf")
            if np.any(w_arr[uni] < 0):
                raise model_error(path, f"layer {i}: a unipolar filter has negative weights")
        layers.append(lay)
    model = Model(scheme, architecture, tuple(layers), prep, input_hi, n_classes, info)
    _check_chain(path, model)
    return model


def _quantized_layer(
    f: Fields,
    g: dict[str, Any],
    i: int,
    kind: str,
    role: str,
    ins: tuple[int, ...],
    outs: tuple[int, ...],
    uni: np.ndarray,
    kw: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> WeightLayer:
    path, w = f.path, f"layers[{i}]"
    n_w, n_b = arrays.get(f"L{i}.n_w"), arrays.get(f"L{i}.n_b")
    if n_w is None or n_b is None:
        raise model_error(path, f"layer {i}: integer levels n_w/n_b are missing")
    if n_w.dtype.kind != "i" or n_b.dtype.kind != "i":
        raise model_error(path, f"layer {i}: integer levels n_w/n_b are not signed-integer arrays")
    og = f.get(g, "out_grid", f"{w}.out_grid")
    out_grid = None if og is None else f.act_grid(g, "out_grid", f"{w}.out_grid")
    if (out_grid is None) != (role == "head"):
        raise model_error(path, f"layer {i}: hidden layers need an output grid, the head none")
    w_grid = f.weight_grid(g, "w_grid", f"{w}.w_grid")
    in_grid = f.act_grid(g, "in_grid", f"{w}.in_grid")
    b_grid = f.bias_grid(g, "b_grid", f"{w}.b_grid")
    step = w_grid.unit * in_grid.hi  # the bias row is driven at the input's full scale
    if not math.isclose(b_grid.step, step, rel_tol=1e-9):
        raise f.fail(
            f"{w}.b_grid.step",
            f"= {b_grid.step!r} differs from w_grid unit x in_grid.hi = {step!r}",
        )
    lay = WeightLayer(
        kind,
        role,
        ins,
        outs,
        uni,
        **kw,
        n_w=n_w.astype(np.int64),
        n_b=n_b.astype(np.int64),
        w_grid=w_grid,
        in_grid=in_grid,
        out_grid=out_grid,
        b_grid=b_grid,
    )
    _check_array_shapes(path, i, lay, n_w, n_b)
    if not w_grid.on_grid(n_w, uni):
        raise model_error(path, f"layer {i}: weight levels are off the weight grid")
    if not b_grid.on_grid(n_b):
        raise model_error(path, f"layer {i}: bias levels are off the bias grid")
    return lay


def _check_array_shapes(
    path: Path, i: int, lay: WeightLayer, arr_w: np.ndarray, arr_b: np.ndarray
) -> None:
    if arr_w.shape != lay.weight_shape() or arr_b.shape != (lay.out_shape[0],):
        raise model_error(
            path,
            f"layer {i}: weights of shape {arr_w.shape} / biases {arr_b.shape} do not "
            f"match its geometry {lay.weight_shape()}",
        )


def _check_adds(path: Path, model: Model) -> None:
    """Every residual Add reads an earlier activation (the output of a hidden weight layer,
    a pool, a flatten or an Add after the first hidden layer) of the shape it adds to."""
    first_hidden = next(
        (j for j, lay in enumerate(model.layers) if isinstance(lay, WeightLayer)), 0
    )
    head = model.layers.index(model.head)
    for i, lay in enumerate(model.layers):
        if not isinstance(lay, AddLayer):
            continue
        if i > head:
            raise model_error(path, f"layer {i}: a residual Add after the head")
        src = model.layers[lay.source]
        if lay.source < first_hidden or (isinstance(src, WeightLayer) and not src.is_hidden):
            raise model_error(
                path, f"layer {i}: its source {lay.source} is not an activation of the network"
            )
        if src.out_shape != lay.out_shape:
            raise model_error(
                path,
                f"layer {i}: adds layer {lay.source}'s output {list(src.out_shape)} to "
                f"{list(lay.out_shape)}",
            )
        prev = model.layers[i - 1]
        if lay.pair and not (isinstance(prev, WeightLayer) and prev.is_hidden):
            raise model_error(path, f"layer {i}: a pair Add must follow a hidden weight layer")


def _check_chain(path: Path, model: Model) -> None:
    wl = model.weight_layers
    if not wl or wl[-1].role != "head" or any(lay.role != "hidden" for lay in wl[:-1]):
        raise model_error(path, "the last weight layer must be the head and all others hidden")
    if model.layers[0].in_shape != model.preprocessing.input_shape:
        raise model_error(path, "the first layer's input shape differs from the preprocessing's")
    for a, b in itertools.pairwise(model.layers):
        if a.out_shape != b.in_shape:
            raise model_error(path, f"layer shapes do not chain: {a.out_shape} -> {b.in_shape}")
    if model.head.out_shape != (model.n_classes,):
        raise model_error(path, "the head's output size differs from n_classes")
    _check_adds(path, model)
    if not model.quantized:
        return
    # every layer of a quantized model has passed _quantized_layer: grids present, out_grid
    # on the hidden layers only
    in_grids = [lay.in_grid for lay in wl if lay.in_grid is not None]
    assert len(in_grids) == len(wl)
    if in_grids[0].bits != model.preprocessing.in_bits:
        raise model_error(path, "the input grid's bits differ from the preprocessing's in_bits")
    for a, b in itertools.pairwise(wl):
        assert a.out_grid is not None and b.in_grid is not None
        if a.out_grid.bits != b.in_grid.bits:
            raise model_error(
                path, "a layer's input bits differ from the previous layer's output bits"
            )
    for i, lay in enumerate(model.layers):
        if isinstance(lay, AddLayer):
            assert lay.out_grid is not None  # _build reads it for quantized models
            nxt = next(w for w in model.layers[i:] if isinstance(w, WeightLayer))
            if nxt.in_grid != lay.out_grid:
                raise model_error(
                    path, f"layer {i}: the Add's output grid is not the next weight layer's input"
                )
    if model.scheme == "global":
        # one W grid for every layer, one Y and one B grid for every hidden layer, one X
        # range for every layer (the first layer's input has in_bits instead of a_bits)
        shared = {(lay.w_grid, lay.out_grid, lay.b_grid) for lay in model.hidden_layers}
        w_grids = {lay.w_grid for lay in wl}
        x_grids = {lay.in_grid for lay in wl[1:]}
        x_his = {g.hi for g in in_grids}
        y_grids = {lay.out_grid for lay in model.layers if isinstance(lay, AddLayer)}
        y_grids |= {lay.out_grid for lay in model.hidden_layers}
        if len(shared) > 1 or len(w_grids) > 1 or len(x_grids) > 1 or len(x_his) > 1:
            raise model_error(path, "scheme 'global' but its layers' grids differ")
        if len(y_grids) > 1:
            raise model_error(path, "scheme 'global' but a residual Add's grid is not the Y grid")
