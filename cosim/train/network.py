"""Architectures from a small spec, and the :class:`Network` that runs them.

A spec is a list of layer tuples; every weight layer except the last (the digital classifier
head) is followed by its activation quantizer (the ADC, ReLU embedded):

``mlp``
    Flatten, Dense(128), Dense(64), Dense(classes): a sensor/HAR-style MLP (64 inputs for
    digits, 561 for UCI HAR).
``lenet5``
    Conv 5x5 (6), AvgPool 2, Conv 5x5 (16), AvgPool 2, Flatten, Dense(120), Dense(84),
    Dense(classes); on 1x28x28: 6@24x24 -> 6@12x12 -> 16@8x8 -> 16@4x4 = 256 -> 120 -> 84 -> 10.
``cnn6``
    Six 3x3 convolutions (padding 1) of 32, 32, 64, 64, 128, 128 channels with a 2x2 max
    pool after every second one, Flatten, Dense(classes): for 3x32x32 (CIFAR-10) inputs.

Examples
--------
>>> net = build_network("lenet5", (1, 28, 28), 10, np.random.default_rng(0))
>>> [lay.kind for lay in net.layers][:4]
['conv2d', 'act', 'avgpool2d', 'conv2d']
>>> net.shapes[-1]
(10,)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.errors import DataError
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
    WeightLayer,
)

ARCHITECTURES: dict[str, list[tuple[Any, ...]]] = {
    "mlp": [("flatten",), ("dense", 128), ("dense", 64), ("dense", None)],
    "lenet5": [
        ("conv", 6, 5, 1, 0),
        ("avgpool", 2),
        ("conv", 16, 5, 1, 0),
        ("avgpool", 2),
        ("flatten",),
        ("dense", 120),
        ("dense", 84),
        ("dense", None),
    ],
    "cnn6": [
        ("conv", 32, 3, 1, 1),
        ("conv", 32, 3, 1, 1),
        ("maxpool", 2),
        ("conv", 64, 3, 1, 1),
        ("conv", 64, 3, 1, 1),
        ("maxpool", 2),
        ("conv", 128, 3, 1, 1),
        ("conv", 128, 3, 1, 1),
        ("maxpool", 2),
        ("flatten",),
        ("dense", None),
    ],
}


#: The ``TrainConfig.model`` of a network imported from ONNX (``cosim import``): its layers
#: come from the graph, not from :data:`ARCHITECTURES`, and training starts from its weights.
IMPORTED = "imported"

#: Which filters a unipolar fraction counts (:attr:`~cosim.train.config.TrainConfig.unipolar_scope`)
UNIPOLAR_SCOPES = ("hidden", "conv")


def has_convolutions(name: str) -> bool:
    """Whether architecture ``name`` has convolution layers."""
    return any(s[0] == "conv" for s in ARCHITECTURES[check_architecture(name)])


def check_architecture(name: str) -> str:
    """Return ``name`` if it is a known architecture, else raise a clear error."""
    if name not in ARCHITECTURES:
        raise DataError(f"unknown model {name!r}: choose one of {', '.join(ARCHITECTURES)}")
    return name


class Network:
    """An ordered list of layers with the shapes between them (NHWC inside).

    Parameters
    ----------
    layers
        The layers, the last weight layer being the classifier head.
    input_shape
        One sample as the dataset gives it: ``(features,)`` or ``(C, H, W)``.

    Residual graphs: an :class:`~cosim.train.layers.Add` reads the current tensor and the
    output of the earlier layer ``add.source``; the forward keeps the outputs of those
    sources, the backward adds the skip operand's gradient to its source's output gradient.
    ``tensor_of[i]`` names the producer of layer ``i``'s output codes (``("in",)``, the
    input; ``("w", li)``, hidden weight layer ``li``'s activation; ``("add", m)``, the
    ``m``-th Add; None for a weight layer's accumulator), which the scheme uses to give the
    Adds and the layers after them their grids.
    """

    def __init__(self, layers: list[Layer], input_shape: tuple[int, ...], arch: str = "") -> None:
        self.layers = layers
        self.arch = arch
        self.input_shape = tuple(input_shape)
        shape = self._internal(self.input_shape)
        self.shapes = [shape]
        for lay in layers:
            shape = lay.out_shape(shape)
            self.shapes.append(shape)
        self.weight_layers = [lay for lay in layers if isinstance(lay, WeightLayer)]
        self.acts = [lay for lay in layers if isinstance(lay, ActQuant)]
        self.head = self.weight_layers[-1]
        self.hidden = self.weight_layers[:-1]
        for i, lay in enumerate(self.weight_layers):
            lay.need_dx = i > 0  # nothing trainable precedes the first weight layer
        self.adds = [lay for lay in layers if isinstance(lay, Add)]
        self._sources = frozenset(add.source for add in self.adds)
        hidden_index = {id(lay): li for li, lay in enumerate(self.hidden)}
        self.tensor_of: list[tuple[Any, ...] | None] = []
        cur: tuple[Any, ...] | None = ("in",)
        for i, lay in enumerate(layers):
            if isinstance(lay, WeightLayer):
                cur = None
            elif isinstance(lay, ActQuant):
                cur = ("w", hidden_index[id(lay.source)])
            elif isinstance(lay, Add):
                if not 0 <= lay.source < i or self.tensor_of[lay.source] is None:
                    raise ValueError(
                        f"the Add at layer {i} reads layer {lay.source}: not an earlier activation"
                    )
                if self.shapes[lay.source + 1] != self.shapes[i]:
                    raise ValueError(
                        f"the Add at layer {i} adds shapes {self.shapes[i]} and "
                        f"{self.shapes[lay.source + 1]}"
                    )
                if lay.pair != isinstance(layers[i - 1], SignedAct):
                    raise ValueError(f"the Add at layer {i}: pair must follow a signed activation")
                cur = ("add", self.adds.index(lay))
            self.tensor_of.append(cur)

    @staticmethod
    def _internal(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape

    def to_internal(self, x: np.ndarray) -> np.ndarray:
        """Dataset layout ``(N, C, H, W)`` to NHWC (feature batches pass unchanged)."""
        return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x

    def forward(
        self,
        x: np.ndarray,
        train: bool = False,
        start: int = 0,
        internal: bool = False,
        collected: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Logits (real units) of a batch.

        ``start`` skips the first layers (``x`` is then the input of ``layers[start]``, as
        :meth:`forward_collect` returns it; a residual network also needs that list,
        ``collected``, for the skips from before ``start``); ``internal`` says ``x`` is
        already NHWC.
        """
        a = x if (internal or start > 0) else self.to_internal(x)
        saved: dict[int, np.ndarray] = {}
        if start > 0 and self.adds:
            if collected is None:
                raise ValueError(
                    "a residual network's forward from a later layer needs the "
                    "collected inputs (forward_collect) for its skips"
                )
            saved = {j: collected[j + 1] for j in self._sources if j < start}
        for i, lay in enumerate(self.layers[start:], start):
            if isinstance(lay, Add):
                a = lay.forward_add(a, saved[lay.source], train)
            else:
                a = lay.forward(a, train)
            if i in self._sources:
                saved[i] = a
        return a * np.float32(self.head.q.acc_unit)

    def forward_collect(self, x: np.ndarray) -> list[np.ndarray]:
        """Inputs of every layer (internal layout) and the final head output, inference only."""
        a = self.to_internal(x)
        out = [a]
        for lay in self.layers:
            if isinstance(lay, Add):
                a = lay.forward_add(a, out[lay.source + 1], False)
            else:
                a = lay.forward(a, False)
            out.append(a)
        return out

    def backward(self, dlogits: np.ndarray) -> None:
        """Backpropagate d(loss)/d(logits); fills every weight layer's ``grads``.

        An Add passes its output's gradient to both operands: the current one flows on, the
        skip operand's is added to its source layer's output gradient.
        """
        d = dlogits  # the logits are the head's real pre-activation z
        pending: dict[int, np.ndarray] = {}
        for i in range(len(self.layers) - 1, -1, -1):
            lay = self.layers[i]
            if i in pending:
                d = d + pending.pop(i)
            if isinstance(lay, Add):
                d, d_skip = lay.backward_add(d)
                pending[lay.source] = (
                    d_skip if lay.source not in pending else pending[lay.source] + d_skip
                )
                continue
            d_in = lay.backward(d)
            if d_in is None:
                break
            d = d_in

    def filters(self, scope: str = "hidden") -> list[tuple[int, int]]:
        """``(hidden layer index, filter)`` of every hidden filter in ``scope``, in order:
        ``hidden``: all of them; ``conv``: those of convolution layers (a pair's filters,
        :attr:`pairs`, never)."""
        if scope not in UNIPOLAR_SCOPES:
            raise ValueError(f"unknown unipolar scope {scope!r}")
        return [
            (li, f)
            for li, lay in enumerate(self.hidden)
            if (scope == "hidden" or isinstance(lay, Conv2D)) and li not in self.pairs
            for f in range(lay.n_out)
        ]

    @property
    def pairs(self) -> frozenset[int]:
        """Hidden layers followed by a :class:`SignedAct` (deployed as a ``[W; -W]`` pair;
        never unipolar: the pair's negative half is the filter negated)."""
        return frozenset(li for li, act in enumerate(self.acts) if isinstance(act, SignedAct))


def build_network(
    arch: str, input_shape: tuple[int, ...], n_classes: int, rng: np.random.Generator
) -> Network:
    """Build architecture ``arch`` for samples of ``input_shape`` and ``n_classes`` classes."""
    spec = ARCHITECTURES[check_architecture(arch)]
    shape: tuple[int, ...] = Network._internal(tuple(input_shape))
    layers: list[Layer] = []
    n_weight = sum(1 for s in spec if s[0] in ("dense", "conv"))
    seen = 0
    for item in spec:
        kind = item[0]
        try:
            if kind == "conv":
                if len(shape) != 3:
                    raise ValueError("convolutions need image samples (C, H, W)")
                _, n_out, k, stride, pad = item
                lay: Layer = Conv2D(shape[2], n_out, k, rng, stride=stride, padding=pad)
            elif kind == "dense":
                if len(shape) != 1:
                    layers.append(Flatten())
                    shape = layers[-1].out_shape(shape)
                lay = Dense(shape[0], item[1] if item[1] is not None else n_classes, rng)
            elif kind == "avgpool":
                lay = AvgPool2D(item[1])
            elif kind == "maxpool":
                lay = MaxPool2D(item[1])
            else:
                if len(shape) == 1:
                    continue
                lay = Flatten()
            shape = lay.out_shape(shape)
        except ValueError as exc:
            raise DataError(
                f"model {arch} does not fit samples of shape {tuple(input_shape)}: {exc}; "
                "use an image dataset of matching size (lenet5: 1x28x28, cnn6: 3x32x32) or "
                "the mlp"
            ) from None
        layers.append(lay)
        if isinstance(lay, WeightLayer):
            seen += 1
            if seen < n_weight:
                layers.append(ActQuant(lay))
    return Network(layers, input_shape, arch)
