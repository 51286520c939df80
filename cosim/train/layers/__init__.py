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

One module per idea: :mod:`~cosim.train.layers.base`, :mod:`~cosim.train.layers.weighted`
(dense and convolution), :mod:`~cosim.train.layers.activation`,
:mod:`~cosim.train.layers.pooling` (pools, flatten), :mod:`~cosim.train.layers.residual`
(the residual Add and the signed activation of its pair) and :mod:`~cosim.train.layers.loss`.
Every name is importable from ``cosim.train.layers``.
"""

from __future__ import annotations

from cosim.train.layers.activation import ActQuant
from cosim.train.layers.base import Layer, LayerQuant
from cosim.train.layers.loss import softmax_xent
from cosim.train.layers.pooling import AvgPool2D, Flatten, MaxPool2D
from cosim.train.layers.residual import Add, SignedAct
from cosim.train.layers.weighted import Conv2D, Dense, WeightLayer

__all__ = [
    "ActQuant",
    "Add",
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Flatten",
    "Layer",
    "LayerQuant",
    "MaxPool2D",
    "SignedAct",
    "WeightLayer",
    "softmax_xent",
]
