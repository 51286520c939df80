"""The deployed model: what ``cosim train`` writes and ``cosim evaluate`` runs.

This package is the contract between training and inference (:mod:`cosim.train` and
:mod:`cosim.engine` both import it; neither imports the other): :mod:`cosim.model.format`
the objects, :mod:`cosim.model.io` the file, :mod:`cosim.model.validate` the field checks
of loading, :mod:`cosim.model.forward` the integer reference forward.

Public API
----------
``load_model(path) -> Model``
    Read and validate a model file; every problem raises
    :class:`~cosim.errors.ModelFileError` naming the file and what is wrong.
``save_model(model, path, extra_arrays=None)``
    Write a model file atomically.
:class:`Model`
    ``scheme`` (``"float"``, ``"per-layer"``, ``"global"``, ``"fixed"``), ``architecture``,
    ``layers`` (a tuple of :class:`WeightLayer`, :class:`PoolLayer`, :class:`FlattenLayer`,
    :class:`AddLayer` in execution order), ``preprocessing`` (:class:`~cosim.quant.Preprocessing`),
    ``input_hi`` (the real value of full-scale input), ``n_classes``, ``info`` (training
    metadata), and the shortcuts ``weight_layers``, ``hidden_layers``, ``head``.
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
:class:`AddLayer`
    A residual Add (``kind = "add"``): the current activation plus the output of the earlier
    layer ``source``, clipped at 0 (ReLU) and, for quantized schemes, to its ``out_grid``
    (:func:`cosim.quant.residual_add`); ``pair`` when the current activation is a signed
    operand held as ``(positive, negative)`` halves of the channels. Digital, between tiles;
    ``Model.residual`` says whether a model has one, ``Model.code_grid(i)`` the grid of
    layer ``i``'s codes.

The engine runs hidden layers on the crossbar (``n_w`` onto device levels, ``n_b`` onto the
bias row driven at full scale), re-quantizes with :func:`cosim.quant.requantize` and computes
the head digitally; :func:`cosim.model.forward.integer_forward` is the reference.
Feature vectors are flattened in ``(C, H, W)`` order.

File format (version 1)
-----------------------
An uncompressed ``.npz`` (``np.load(path, allow_pickle=False)``; nothing is pickled):

``meta``
    0-d unicode array holding JSON: ``format = "cosim-model"``, ``format_version = 1``,
    ``scheme``, ``architecture``, ``n_classes``, ``preprocessing``, ``input_hi``, ``layers``
    (one dict per layer: ``kind`` and geometry; weight layers add ``role`` and, when
    quantized, ``w_grid``/``in_grid``/``out_grid``/``b_grid`` dicts; an ``add`` layer
    ``source`` (an earlier layer's index), ``pair`` and, when quantized, ``out_grid``),
    ``info``. A sequential model's file has no ``add`` entry and is what it always was;
    a cosim older than residual Adds refuses ``kind = "add"`` as an unknown layer kind.
``L{i}.n_w`` (int16), ``L{i}.n_b`` (int32), ``L{i}.unipolar`` (bool)
    Integer levels of weight layer ``i`` (index in ``layers``) for quantized schemes.
``L{i}.w``, ``L{i}.b`` (float32)
    Float weights of float-scheme models.
``shadow.*``
    Optional extra arrays (the float shadow weights), ignored by the loader.

Examples
--------
>>> import tempfile, pathlib
>>> from cosim.model.io import load_model, save_model
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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosim.quant import ActGrid, BiasGrid, Preprocessing, WeightGrid, layer_scale

FORMAT = "cosim-model"
FORMAT_VERSION = 1
SCHEMES = ("float", "per-layer", "global", "fixed")
LAYER_KINDS = ("dense", "conv2d", "avgpool2d", "maxpool2d", "flatten", "add")


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
        assert self.w_grid is not None and self.in_grid is not None  # quantized
        return layer_scale(self.w_grid, self.in_grid, self.out_grid)

    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "conv2d":
            assert self.kernel is not None  # conv2d layers have a kernel
            return (self.out_shape[0], self.in_shape[0], self.kernel, self.kernel)
        return (self.out_shape[0], self.in_shape[0])

    def weights(self) -> np.ndarray:
        """Real weights (float64): ``n_w * u`` or the float weights."""
        if self.quantized:
            assert self.n_w is not None and self.w_grid is not None
            return np.asarray(self.n_w * self.w_grid.unit, dtype=np.float64)
        return np.asarray(self.w, dtype=np.float64)

    def biases(self) -> np.ndarray:
        """Real biases (float64): ``n_b * step_b`` or the float biases."""
        if self.quantized:
            assert self.n_b is not None and self.b_grid is not None
            return np.asarray(self.n_b * self.b_grid.step, dtype=np.float64)
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


@dataclass(frozen=True)
class AddLayer:
    """A residual Add: digital, between tiles, of the current activation and the output of
    an earlier layer ``source`` (an index into ``Model.layers``), ReLU'd (clipped at 0).

    ``pair``: the current activation holds a signed operand as two halves of channels
    (features), ``(positive, negative)``: a hidden layer whose weights and biases are
    ``[W; -W]``, ``[b; -b]`` gives ``relu(z)`` and ``relu(-z)`` (the chip programs ``W`` once
    and reads the signed code, :func:`cosim.engine.mapping.signed_half`), and the operand
    is their difference (``in_shape`` has ``2 C`` channels, ``out_shape``
    ``C``). Quantized models give ``out_grid``, the grid of the sum; each operand is
    rescaled onto it by :func:`cosim.quant.residual_add` (on one shared grid: the sum of
    the codes, clipped to the grid).
    """

    source: int
    pair: bool = False
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    out_grid: ActGrid | None = None
    kind: str = "add"

    def geometry(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "add",
            "source": self.source,
            "pair": self.pair,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
        }
        if self.out_grid is not None:
            d["out_grid"] = self.out_grid.to_dict()
        return d


Layer = WeightLayer | PoolLayer | FlattenLayer | AddLayer


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

    @property
    def residual(self) -> bool:
        """Whether the network has residual Adds (a graph, not a list of layers)."""
        return any(isinstance(lay, AddLayer) for lay in self.layers)

    def code_grid(self, i: int) -> ActGrid | None:
        """The grid of the codes ``layers[i]`` outputs (``i = -1``: the input codes): the
        output grid of the nearest hidden weight layer or Add at or before ``i``."""
        for lay in reversed(self.layers[: i + 1]):
            if isinstance(lay, AddLayer):
                return lay.out_grid
            if isinstance(lay, WeightLayer):
                return lay.out_grid
        return self.input_grid

    def add_sources(self) -> frozenset[int]:
        """Indices of the layers whose outputs a later Add reads."""
        return frozenset(lay.source for lay in self.layers if isinstance(lay, AddLayer))
