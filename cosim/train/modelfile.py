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
import math
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cosim.errors import ModelFileError
from cosim.fileio import (
    NPY_READ_ERRORS,
    error_text,
    int_digits_limit,
    npz_problem,
    save_npz_atomic,
    show_path,
    stat_path,
)
from cosim.quant import (
    MAX_BIAS_BITS,
    MAX_BITS,
    MIN_BIAS_BITS,
    MIN_BITS,
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
LAYER_KINDS = ("dense", "conv2d", "avgpool2d", "maxpool2d", "flatten")


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
#: Largest model file (or checkpoint) :func:`read_npz` opens: 4 GiB, about 100 times the
#: largest model ``cosim train`` writes (cnn6 with its float shadow weights).
MAX_MODEL_BYTES = 4 << 30
#: Bounds on what the metadata may describe (far beyond any model ``cosim train`` writes).
MAX_LAYERS = 1000
MAX_DIM = 1 << 20
MAX_ELEMENTS = 1 << 31
MAX_CLASSES = 1 << 20
#: Real-valued ranges (grid ranges, input_hi, preprocessing scale/offset) must lie within
#: ``[1 / MAX_RANGE, MAX_RANGE]`` (offsets: ``|offset| <= MAX_RANGE``), so no forward overflows.
MAX_RANGE = 1e12


def _fail(path: Path, msg: str) -> ModelFileError:
    return ModelFileError(f"model file {show_path(path)}: {msg}")


def _open_regular(path: Path, what: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most :data:`MAX_MODEL_BYTES`.

    A directory, FIFO or device (``/dev/zero``) is refused before anything is read; so is a
    path no file can have (a NUL byte, a name longer than the file system allows).
    """
    st = stat_path(
        path, what=what, error=ModelFileError, missing="; train one with `cosim train --out`"
    )
    _check_regular(path, st.st_mode, what)
    try:
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it does not
        # wait for a writer; fstat below then refuses it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ModelFileError(f"cannot read {what} {show_path(path)}: {error_text(exc)}") from None
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        _check_regular(path, st.st_mode, what)
        if st.st_size > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"{what} {show_path(path)} is larger than any model file ({st.st_size} bytes, "
                f"limit {MAX_MODEL_BYTES}); pass the .npz that `cosim train` wrote"
            )
    except BaseException:
        fh.close()
        raise
    return fh


def _check_regular(path: Path, mode: int, what: str) -> None:
    if stat.S_ISDIR(mode):
        raise ModelFileError(
            f"{what} {show_path(path)} is a directory, not a {what}; pass the .npz that "
            "`cosim train` wrote"
        )
    if not stat.S_ISREG(mode):
        raise ModelFileError(
            f"{what} {show_path(path)} is not a regular file (a FIFO, socket or device); pass "
            "the .npz that `cosim train` wrote"
        )


def read_npz(path: str | Path, what: str = "model file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickle), with corrupt files as ModelFileError.

    ``path`` must be a regular file of at most :data:`MAX_MODEL_BYTES`; a directory, FIFO
    or device is refused without reading it. Before any array is loaded the archive is
    checked (:func:`cosim.fileio.npz_problem`): members that are all ``.npy`` arrays with
    complete headers, of real numbers, booleans or text (no Python objects, no complex
    numbers, which a real array would silently lose the imaginary part of), declaring no
    more data than they hold and together at most :data:`MAX_MODEL_BYTES`.
    """
    path = Path(path)

    def corrupt(reason: str) -> ModelFileError:
        return ModelFileError(
            f"{what} {show_path(path)} is corrupt or not a cosim .npz file ({reason}); retrain "
            "it with `cosim train`"
        )

    with _open_regular(path, what) as fh:
        problem = npz_problem(fh, MAX_MODEL_BYTES)
        if problem is not None:
            raise corrupt(problem)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # nothing a damaged file does is printed
                with np.load(fh, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
        except NPY_READ_ERRORS as exc:
            raise corrupt(error_text(exc)) from exc
    odd = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if odd:  # np.load hands members that are not .npy arrays over as bytes
        raise corrupt(f"member {odd[0]!a} is not an array")
    return arrays


def _brief(exc: object, limit: int = 160) -> str:
    """One short line describing ``exc`` (an exception or a text) for an error message."""
    if isinstance(exc, BaseException):
        return error_text(exc, limit)
    return error_text(ValueError(str(exc)), limit)


def _read_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arr = arrays.get("meta")
    if arr is None:
        raise _fail(path, "has no metadata; it was not written by `cosim train`")
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise _fail(path, "its metadata is not a text string; the file is corrupt")
    # cosim writes ASCII; check the UTF-32 code units before making a str of them (NumPy
    # builds broken str objects from code points past U+10FFFF) and refuse surrogates
    order = arr.dtype.byteorder if arr.dtype.byteorder in "<>" else "="
    units = np.frombuffer(arr.tobytes(), dtype=np.dtype(np.uint32).newbyteorder(order))
    if np.any((units > 0x10FFFF) | ((units >= 0xD800) & (units <= 0xDFFF))):
        raise _fail(path, "its metadata is not valid Unicode text; the file is corrupt")
    text = str(arr)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            path, f"metadata is not valid JSON ({_brief(exc)}); the file is corrupt"
        ) from exc
    except ValueError as exc:  # an integer of more digits than int() converts
        raise _fail(
            path,
            f"metadata is not valid JSON (it holds an integer of more than {int_digits_limit()} "
            "digits); the file is corrupt",
        ) from exc
    except (RecursionError, MemoryError) as exc:
        raise _fail(path, "its metadata nests too deeply; the file is corrupt") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, f"is not a {FORMAT} file")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise _fail(
            path,
            f"has format version {_short(version)} but this cosim reads version "
            f"{FORMAT_VERSION}; retrain the model with this cosim version (or use the cosim "
            "that wrote it)",
        )
    return meta


def load_model(path: str | Path) -> Model:
    """Load and validate a model file.

    Every metadata field is checked for its type and range (naming the field, e.g.
    ``info.test_accuracy`` or ``layers[2].w_grid.bits``), the geometry of every layer for
    consistency (conv output sizes, pooling, flatten, the chain of shapes), the arrays for
    their shapes, dtypes and finiteness, and quantized levels for lying on their grids.

    Raises
    ------
    ModelFileError
        For any problem: a missing, non-regular, oversized, truncated or corrupt file, a
        foreign format or version, a field of the wrong type or range, inconsistent arrays.
    """
    path = Path(path)
    arrays = read_npz(path)
    meta = _read_meta(path, arrays)
    try:
        return _build(_Fields(path), meta, arrays)
    except ModelFileError:
        raise
    except (GridError, KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        # the checks above should leave nothing for here; kept as a last line of defence
        raise _fail(
            path, f"inconsistent metadata or arrays ({_brief(repr(exc))}); the file is corrupt"
        ) from exc


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (ASCII), for one-line error messages."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Fields:
    """Typed reads of metadata fields; every mismatch is a ModelFileError naming the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, msg: str) -> ModelFileError:
        return _fail(
            self.path,
            f"metadata field {where} {msg}; the file is corrupt or was not written by cosim",
        )

    def get(self, d: dict[str, Any], key: str, where: str) -> Any:
        if key not in d:
            return self._missing(where)
        return d[key]

    def _missing(self, where: str) -> Any:
        raise _fail(
            self.path, f"metadata lacks field {where}; the file is corrupt or not from cosim"
        )

    def table(self, d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        v = self.get(d, key, where)
        if not isinstance(v, dict):
            raise self.fail(where, f"must be an object, got {_short(v)}")
        return v

    def text(self, v: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
        if choices is not None:
            if not isinstance(v, str) or v not in choices:
                raise self.fail(where, f"must be one of {', '.join(choices)}, got {_short(v)}")
            return v
        if not isinstance(v, str) or not v or len(v) > 200 or not v.isprintable():
            raise self.fail(where, f"must be a short printable string, got {_short(v)}")
        try:
            v.encode("utf-8")
        except UnicodeError:
            raise self.fail(where, f"is not valid Unicode text, got {_short(v)}") from None
        return v

    def integer(self, v: Any, where: str, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(where, f"must be an integer in {lo}..{hi}, got {_short(v)}")
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
                where, f"must be {what or 'a number'} in [{lo:g}, {hi:g}], got {_short(v)}"
            )
        return x

    def positive(self, v: Any, where: str) -> float:
        return self.number(v, where, 1.0 / MAX_RANGE, MAX_RANGE, "a positive number")

    def shape(self, v: Any, where: str, ndim: tuple[int, ...] = (1, 3)) -> tuple[int, ...]:
        if not isinstance(v, list) or len(v) not in ndim:
            n = " or ".join(str(k) for k in ndim)
            raise self.fail(where, f"must be a list of {n} sizes, got {_short(v)}")
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


def _preprocessing(f: _Fields, meta: dict[str, Any]) -> Preprocessing:
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


def _info(f: _Fields, meta: dict[str, Any]) -> dict[str, Any]:
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
            raise f.fail("info.dataset", f"must be a dataset spec (a string), got {_short(ds)}")
    if "test_accuracy" in info:
        f.number(info["test_accuracy"], "info.test_accuracy", 0.0, 1.0, "a fraction")
    if "epochs_trained" in info:
        f.integer(info["epochs_trained"], "info.epochs_trained", 0, 10**9)
    if "config" in info:
        f.table(info, "config", "info.config")
    return info


def _geometry(f: _Fields, g: dict[str, Any], i: int, kind: str) -> tuple[tuple, tuple, dict]:
    """Input and output shapes of layer ``i`` and its conv/pool parameters, checked to agree."""
    w = f"layers[{i}]"
    three = (3,)
    if kind == "flatten":
        ins = f.shape(f.get(g, "in_shape", f"{w}.in_shape"), f"{w}.in_shape")
        outs = f.shape(f.get(g, "out_shape", f"{w}.out_shape"), f"{w}.out_shape", (1,))
        if outs != (math.prod(ins),):
            raise f.fail(f"{w}.out_shape", f"{list(outs)} is not the flattened {list(ins)}")
        return ins, outs, {}
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


def _build(f: _Fields, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
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
            "layers", f"must be a list of 1..{MAX_LAYERS} layers, got {_short(layers_meta)}"
        )
    layers: list[Layer] = []
    for i, g in enumerate(layers_meta):
        w = f"layers[{i}]"
        if not isinstance(g, dict):
            raise f.fail(w, f"must be an object, got {_short(g)}")
        kind = f.text(f.get(g, "kind", f"{w}.kind"), f"{w}.kind", LAYER_KINDS)
        ins, outs, kw = _geometry(f, g, i, kind)
        if kind in ("avgpool2d", "maxpool2d"):
            layers.append(PoolLayer(kind, kw["size"], ins, outs))
            continue
        if kind == "flatten":
            layers.append(FlattenLayer(ins, outs))
            continue
        role = f.text(f.get(g, "role", f"{w}.role"), f"{w}.role", ("hidden", "head"))
        uni = arrays.get(f"L{i}.unipolar")
        if uni is None or uni.dtype != bool or uni.shape != (outs[0],):
            raise _fail(path, f"layer {i}: missing or malformed unipolar mask")
        if quantized:
            lay = _quantized_layer(f, g, i, kind, role, ins, outs, uni, kw, arrays)
        else:
            w_arr, b_arr = arrays.get(f"L{i}.w"), arrays.get(f"L{i}.b")
            if w_arr is None or b_arr is None:
                raise _fail(path, f"layer {i}: float weights w/b are missing")
            if w_arr.dtype.kind != "f" or b_arr.dtype.kind != "f":
                raise _fail(path, f"layer {i}: float weights w/b are not floating-point arrays")
            lay = WeightLayer(kind, role, ins, outs, uni, **kw, w=w_arr, b=b_arr)
            _check_array_shapes(path, i, lay, w_arr, b_arr)
            if not (np.all(np.isfinite(w_arr)) and np.all(np.isfinite(b_arr))):
                raise _fail(path, f"layer {i}: weights hold NaN/inf")
            if np.any(w_arr[uni] < 0):
                raise _fail(path, f"layer {i}: a unipolar filter has negative weights")
        layers.append(lay)
    model = Model(scheme, architecture, tuple(layers), prep, input_hi, n_classes, info)
    _check_chain(path, model)
    return model


def _quantized_layer(
    f: _Fields,
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
        raise _fail(path, f"layer {i}: integer levels n_w/n_b are missing")
    if n_w.dtype.kind != "i" or n_b.dtype.kind != "i":
        raise _fail(path, f"layer {i}: integer levels n_w/n_b are not signed-integer arrays")
    og = f.get(g, "out_grid", f"{w}.out_grid")
    out_grid = None if og is None else f.act_grid(g, "out_grid", f"{w}.out_grid")
    if (out_grid is None) != (role == "head"):
        raise _fail(path, f"layer {i}: hidden layers need an output grid, the head none")
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
        raise _fail(path, f"layer {i}: weight levels are off the weight grid")
    if not b_grid.on_grid(n_b):
        raise _fail(path, f"layer {i}: bias levels are off the bias grid")
    return lay


def _check_array_shapes(
    path: Path, i: int, lay: WeightLayer, arr_w: np.ndarray, arr_b: np.ndarray
) -> None:
    if arr_w.shape != lay.weight_shape() or arr_b.shape != (lay.out_shape[0],):
        raise _fail(
            path,
            f"layer {i}: weights of shape {arr_w.shape} / biases {arr_b.shape} do not "
            f"match its geometry {lay.weight_shape()}",
        )


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
