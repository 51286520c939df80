"""The deployed model: the contract between training and inference.

:mod:`cosim.train` writes it and :mod:`cosim.engine` runs it; both import this package and
neither imports the other.

* :mod:`cosim.model.format`: :class:`Model` and its layers (:class:`WeightLayer`,
  :class:`PoolLayer`, :class:`FlattenLayer`, :class:`AddLayer`: a residual Add), the file
  format's description and constants;
* :mod:`cosim.model.io`: :func:`save_model`, :func:`load_model`, :func:`read_npz`;
* :mod:`cosim.model.validate`: the field-by-field checks of loading;
* :mod:`cosim.model.forward`: the integer reference forward (:func:`integer_forward`), the
  float forward and :func:`predict`, and the :func:`im2col` and :func:`pool` the engine shares.
"""

from __future__ import annotations

from cosim.model.format import (
    FORMAT,
    FORMAT_VERSION,
    LAYER_KINDS,
    SCHEMES,
    AddLayer,
    FlattenLayer,
    Layer,
    Model,
    PoolLayer,
    WeightLayer,
)
from cosim.model.forward import (
    ForwardResult,
    exact_matmul,
    float_forward,
    im2col,
    integer_forward,
    pool,
    predict,
)
from cosim.model.io import MAX_MODEL_BYTES, load_model, read_npz, save_model

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LAYER_KINDS",
    "MAX_MODEL_BYTES",
    "SCHEMES",
    "AddLayer",
    "FlattenLayer",
    "ForwardResult",
    "Layer",
    "Model",
    "PoolLayer",
    "WeightLayer",
    "exact_matmul",
    "float_forward",
    "im2col",
    "integer_forward",
    "load_model",
    "pool",
    "predict",
    "read_npz",
    "save_model",
]
