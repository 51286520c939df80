"""The model file written by ``cosim train``, and the deployed model object it loads into.

Public API
----------
``load_model(path) -> Model``
    Read and validate a model file; every problem raises
    :class:`~cosim.errors.ModelFileError` naming the file and what is wrong.
``save_model(model, path, extra_arrays=None)``
    Write a model file atomically.
:class:`Model`
    ``scheme`` (``"float"``, ``"per-layer"``, ``"global"``), ``architecture``, ``layers``
    (a tuple of :class:`WeightLayer`, :class:`PoolLayer`, :class:`FlattenLayer` in execution
    order), ``preprocessing`` (:class:`~cosim.quant.Preprocessing`), ``input_hi`` (the real
    value of full-scale input), ``n_classes``, ``info`` (training metadata), and the
    shortcuts ``weight_layers``, ``hidden_layers``, ``head``.
:class:`WeightLayer`
    ``kind`` (``"dense"`` or ``"conv2d"``), ``role`` (``"hidden"``: a crossbar layer followed by
    its ADC; ``"head"``: the digital classifier, logits not activation-quantized), geometry
    (``in_features``/``out_features`` or ``in_channels``/``out_channels``/``kernel``/
    ``stride``/``padding``), ``in_shape``/``out_shape`` of one sample in ``(C, H, W)`` or
    ``(F,)`` order, ``unipolar`` (bool per output filter) and, for quantized schemes, the
    integer levels ``n_w`` (int64; ``(out, in)`` or ``(out, in_ch, kh, kw)``) and ``n_b``
    (int64 ``(out,)``) with the grids ``w_grid``, ``in_grid``, ``out_grid`` (None for the
    head), ``b_grid`` and ``scale`` (:func:`cosim.quant.layer_scale`); for the float scheme,
    float weights ``w`` and biases ``b``. ``weights()``/``biases()`` give real values for any
    scheme.

The engine runs hidden layers on the crossbar (``n_w`` onto device levels, ``n_b`` onto the
bias row driven at full scale), re-quantizes with :func:`cosim.quant.requantize` and computes
the head digitally; :func:`cosim.integer_forward.integer_forward` is the reference.
Feature vectors are flattened in ``(C, H, W)`` order.

File format (version 1)
-----------------------
An uncompressed ``.npz`` (``np.load(path, allow_pickle=False)``; nothing is pickled):

``meta``
    0-d unicode array holding JSON: ``format = "cosim-model"``, ``format_version = 1``,
    ``scheme``, ``architecture``, ``n_classes``, ``preprocessing``, ``input_hi``, ``layers``
    (one dict per layer: ``kind`` and geometry; weight layers add ``role`` and, when
    quantized, ``w_grid``/``in_grid``/``out_grid``/``b_grid`` dicts), ``info``.
``L{i}.n_w`` (int16), ``L{i}.n_b`` (int32), ``L{i}.unipolar`` (bool)
    Integer levels of weight layer ``i`` (index in ``layers``) for quantized schemes.
``L{i}.w``, ``L{i}.b`` (float32)
    Float weights of float-scheme models.
``shadow.*``
    Optional extra arrays (the float shadow weights), ignored by the loader.

Examples
--------
>>> import tempfile, pathlib
>>> from cosim.quant import Preprocessing
>>> lay = WeightLayer(kind="dense", role="head", in_shape=(2,), out_shape=(1,),
...                   unipolar=np.zeros(1, bool), w=np.ones((1, 2), np.float32),
...                   b=np.zeros(1, np.float32))
>>> m = Model("float", "tiny", (lay,), Preprocessing(0.0, 1.0, 8, (2,)), 2.0, 1)
>>> p = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
>>> save_model(m, p)
>>> load_model(p).head.w.tolist()
[[1.0, 1.0]]
"""

from __future__ import annotations

import itertools
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import ModelFileError
from cosim.fileio import save_npz_atomic
from cosim.quant import (
    ActGrid,
    BiasGrid,
    GridError,
    Preprocessing,
    WeightGrid,
    layer_scale,
)

FORMAT = "cosim-model"
FORMAT_VERSION = 1
SCHEMES = ("float", "per-layer", "global")


@dataclass(frozen=True, eq=False)
class WeightLayer:
    """A dense or convolutional layer of a trained model (see the module docstring)."""

    kind: str
    role: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    unipolar: np.ndarray
    kernel: int | None = None
    stride: int = 1
    padding: int = 0
    n_w: np.ndarray | None = None
    n_b: np.ndarray | None = None
    w_grid: WeightGrid | None = None
    in_grid: ActGrid | None = None
    out_grid: ActGrid | None = None
    b_grid: BiasGrid | None = None
    w: np.ndarray | None = None
    b: np.ndarray | None = None

    @property
    def quantized(self) -> bool:
        return self.n_w is not None

    @property
    def is_hidden(self) -> bool:
        return self.role == "hidden"

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    in_features = in_channels
    out_features = out_channels

    @property
    def scale(self) -> float:
        """Requantization scale ``u * step_in / step_out`` (hidden quantized layers)."""
        if not self.quantized or self.out_grid is None:
            raise AttributeError("only quantized hidden layers have a requantization scale")
        return layer_scale(self.w_grid, self.in_grid, self.out_grid)  # type: ignore[arg-type]

    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "conv2d":
            return (self.out_shape[0], self.in_shape[0], self.kernel, self.kernel)  # type: ignore[return-value]
        return (self.out_shape[0], self.in_shape[0])

    def weights(self) -> np.ndarray:
        """Real weights (float64): ``n_w * u`` or the float weights."""
        if self.quantized:
            return self.n_w * self.w_grid.unit  # type: ignore[operator,union-attr]
        return np.asarray(self.w, dtype=np.float64)

    def biases(self) -> np.ndarray:
        """Real biases (float64): ``n_b * step_b`` or the float biases."""
        if self.quantized:
            return self.n_b * self.b_grid.step  # type: ignore[operator,union-attr]
        return np.asarray(self.b, dtype=np.float64)

    def geometry(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "role": self.role,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
        }
        if self.kind == "conv2d":
            d.update(kernel=self.kernel, stride=self.stride, padding=self.padding)
        return d


@dataclass(frozen=True)
class PoolLayer:
    """Non-overlapping ``size`` x ``size`` pooling: ``avgpool2d`` (codes re-quantized with
    ``(sum + n//2) // n``) or ``maxpool2d`` (exact)."""

    kind: str
    size: int
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    def geometry(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": self.size,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
        }


@dataclass(frozen=True)
class FlattenLayer:
    """Images ``(C, H, W)`` to feature vectors in (C, H, W) order."""

    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    kind: str = "flatten"

    def geometry(self) -> dict[str, Any]:
        return {
            "kind": "flatten",
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
        }


Layer = WeightLayer | PoolLayer | FlattenLayer


@dataclass(frozen=True)
class Model:
    """A trained network as the hardware runs it (see the module docstring)."""

    scheme: str
    architecture: str
    layers: tuple[Layer, ...]
    preprocessing: Preprocessing
    input_hi: float
    n_classes: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def weight_layers(self) -> list[WeightLayer]:
        return [lay for lay in self.layers if isinstance(lay, WeightLayer)]

    @property
    def hidden_layers(self) -> list[WeightLayer]:
        return [lay for lay in self.weight_layers if lay.is_hidden]

    @property
    def head(self) -> WeightLayer:
        return self.weight_layers[-1]

    @property
    def quantized(self) -> bool:
        return self.scheme != "float"

    @property
    def input_grid(self) -> ActGrid | None:
        return self.weight_layers[0].in_grid


# ------------------------------------------------------------------------------------ save
def save_model(
    model: Model, path: str | Path, extra_arrays: dict[str, np.ndarray] | None = None
) -> None:
    """Write ``model`` to ``path`` (``.npz`` + JSON metadata) atomically."""
    arrays: dict[str, np.ndarray] = {}
    layers_meta = []
    for i, lay in enumerate(model.layers):
        g = lay.geometry()
        if isinstance(lay, WeightLayer):
            arrays[f"L{i}.unipolar"] = np.asarray(lay.unipolar, dtype=bool)
            if lay.quantized:
                arrays[f"L{i}.n_w"] = lay.n_w.astype(np.int16)  # type: ignore[union-attr]
                arrays[f"L{i}.n_b"] = lay.n_b.astype(np.int32)  # type: ignore[union-attr]
                g["w_grid"] = lay.w_grid.to_dict()  # type: ignore[union-attr]
                g["in_grid"] = lay.in_grid.to_dict()  # type: ignore[union-attr]
                g["out_grid"] = None if lay.out_grid is None else lay.out_grid.to_dict()
                g["b_grid"] = lay.b_grid.to_dict()  # type: ignore[union-attr]
            else:
                arrays[f"L{i}.w"] = np.asarray(lay.w, dtype=np.float32)
                arrays[f"L{i}.b"] = np.asarray(lay.b, dtype=np.float32)
        layers_meta.append(g)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scheme": model.scheme,
        "architecture": model.architecture,
        "n_classes": model.n_classes,
        "preprocessing": model.preprocessing.to_dict(),
        "input_hi": model.input_hi,
        "layers": layers_meta,
        "info": model.info,
    }
    from cosim.fileio import dumps_json

    arrays["meta"] = np.array(dumps_json(meta))
    for k, v in (extra_arrays or {}).items():
        arrays["shadow." + k] = v
    save_npz_atomic(path, **arrays)


# ------------------------------------------------------------------------------------ load
def _fail(path: Path, msg: str) -> ModelFileError:
    return ModelFileError(f"model file {path}: {msg}")


def read_npz(path: str | Path, what: str = "model file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickle), with corrupt files as ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{what} {path} does not exist; train one with `cosim train --out`")
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise ValueError("not a zip archive")
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(
            f"{what} {path} is corrupt or not a cosim .npz file ({exc}); retrain it with "
            "`cosim train`"
        ) from exc


def _read_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U" or arrays["meta"].ndim != 0:
        raise _fail(path, "has no metadata; it was not written by `cosim train`")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise _fail(path, f"metadata is not valid JSON ({exc}); the file is corrupt") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, f"is not a {FORMAT} file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(
            path,
            f"has format version {version!r} but this cosim reads version {FORMAT_VERSION}; "
            "retrain the model with this cosim version (or use the cosim that wrote it)",
        )
    return meta


def load_model(path: str | Path) -> Model:
    """Load and validate a model file (format, version, shapes, levels on their grids)."""
    path = Path(path)
    arrays = read_npz(path)
    meta = _read_meta(path, arrays)
    try:
        return _build(path, meta, arrays)
    except ModelFileError:
        raise
    except (GridError, KeyError, TypeError, ValueError) as exc:
        raise _fail(
            path, f"inconsistent metadata or arrays ({exc!r}); the file is corrupt"
        ) from exc


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in v)


def _build(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
    scheme = meta["scheme"]
    if scheme not in SCHEMES:
        raise _fail(path, f"unknown scheme {scheme!r}")
    quantized = scheme != "float"
    prep = Preprocessing.from_dict(meta["preprocessing"])
    layers: list[Layer] = []
    for i, g in enumerate(meta["layers"]):
        kind = g["kind"]
        ins, outs = _shape(g["in_shape"]), _shape(g["out_shape"])
        if kind in ("avgpool2d", "maxpool2d"):
            layers.append(PoolLayer(kind, int(g["size"]), ins, outs))
            continue
        if kind == "flatten":
            layers.append(FlattenLayer(ins, outs))
            continue
        if kind not in ("dense", "conv2d"):
            raise _fail(path, f"layer {i} has unknown kind {kind!r}")
        role = g["role"]
        if role not in ("hidden", "head"):
            raise _fail(path, f"layer {i} has unknown role {role!r}")
        kw: dict[str, Any] = {}
        if kind == "conv2d":
            kw = {
                "kernel": int(g["kernel"]),
                "stride": int(g["stride"]),
                "padding": int(g["padding"]),
            }
        uni = arrays.get(f"L{i}.unipolar")
        if uni is None or uni.dtype != bool or uni.shape != (outs[0],):
            raise _fail(path, f"layer {i}: missing or malformed unipolar mask")
        if quantized:
            n_w, n_b = arrays.get(f"L{i}.n_w"), arrays.get(f"L{i}.n_b")
            if n_w is None or n_b is None:
                raise _fail(path, f"layer {i}: integer levels n_w/n_b are missing")
            lay = WeightLayer(
                kind,
                role,
                ins,
                outs,
                uni,
                **kw,
                n_w=n_w.astype(np.int64),
                n_b=n_b.astype(np.int64),
                w_grid=WeightGrid.from_dict(g["w_grid"]),
                in_grid=ActGrid.from_dict(g["in_grid"]),
                out_grid=None if g["out_grid"] is None else ActGrid.from_dict(g["out_grid"]),
                b_grid=BiasGrid.from_dict(g["b_grid"]),
            )
            if (lay.out_grid is None) != (role == "head"):
                raise _fail(path, f"layer {i}: hidden layers need an output grid, the head none")
            if not lay.w_grid.on_grid(n_w, uni):  # type: ignore[union-attr]
                raise _fail(path, f"layer {i}: weight levels are off the weight grid")
            if not lay.b_grid.on_grid(n_b):  # type: ignore[union-attr]
                raise _fail(path, f"layer {i}: bias levels are off the bias grid")
            arr_w, arr_b = n_w, n_b
        else:
            w, b = arrays.get(f"L{i}.w"), arrays.get(f"L{i}.b")
            if w is None or b is None:
                raise _fail(path, f"layer {i}: float weights w/b are missing")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise _fail(path, f"layer {i}: weights hold NaN/inf")
            if w.shape[:1] == uni.shape and np.any(w[uni] < 0):
                raise _fail(path, f"layer {i}: a unipolar filter has negative weights")
            lay = WeightLayer(kind, role, ins, outs, uni, **kw, w=w, b=b)
            arr_w, arr_b = w, b
        if arr_w.shape != lay.weight_shape() or arr_b.shape != (outs[0],):
            raise _fail(
                path,
                f"layer {i}: weights of shape {arr_w.shape} / biases {arr_b.shape} do not "
                f"match its geometry {lay.weight_shape()}",
            )
        layers.append(lay)
    model = Model(
        scheme,
        meta["architecture"],
        tuple(layers),
        prep,
        float(meta["input_hi"]),
        int(meta["n_classes"]),
        meta.get("info", {}),
    )
    _check_chain(path, model)
    return model


def _check_chain(path: Path, model: Model) -> None:
    wl = model.weight_layers
    if not wl or wl[-1].role != "head" or any(lay.role != "hidden" for lay in wl[:-1]):
        raise _fail(path, "the last weight layer must be the head and all others hidden")
    if model.layers[0].in_shape != model.preprocessing.input_shape:
        raise _fail(path, "the first layer's input shape differs from the preprocessing's")
    for a, b in itertools.pairwise(model.layers):
        if a.out_shape != b.in_shape:
            raise _fail(path, f"layer shapes do not chain: {a.out_shape} -> {b.in_shape}")
    if model.head.out_shape != (model.n_classes,):
        raise _fail(path, "the head's output size differs from n_classes")
    if not model.quantized:
        return
    if wl[0].in_grid.bits != model.preprocessing.in_bits:  # type: ignore[union-attr]
        raise _fail(path, "the input grid's bits differ from the preprocessing's in_bits")
    for a, b in itertools.pairwise(wl):
        if a.out_grid.bits != b.in_grid.bits:  # type: ignore[union-attr]
            raise _fail(path, "a layer's input bits differ from the previous layer's output bits")
    if model.scheme == "global":
        # one W grid for every layer, one Y and one B grid for every hidden layer, one X
        # range for every layer (the first layer's input has in_bits instead of a_bits)
        shared = {(lay.w_grid, lay.out_grid, lay.b_grid) for lay in model.hidden_layers}
        w_grids = {lay.w_grid for lay in wl}
        x_grids = {lay.in_grid for lay in wl[1:]}
        x_his = {lay.in_grid.hi for lay in wl}  # type: ignore[union-attr]
        if len(shared) > 1 or len(w_grids) > 1 or len(x_grids) > 1 or len(x_his) > 1:
            raise _fail(path, "scheme 'global' but its layers' grids differ")
