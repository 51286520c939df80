"""Layers that reshape: average and max pooling (on codes), flatten."""

from __future__ import annotations

import numpy as np

from cosim.quant import avgpool_round
from cosim.train.layers.base import Layer


class AvgPool2D(Layer):
    """Non-overlapping average pooling. On codes it re-quantizes with integer round half up,
    ``(sum + n//2) // n``; on floats it is the plain mean. Gradient: ``dy / n`` to each input.
    """

    kind = "avgpool2d"

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = size
        self.quantized = False

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = in_shape
        if h % self.size or w % self.size:
            raise ValueError(f"{self.size}x{self.size} pooling needs sizes divisible by it")
        return (h // self.size, w // self.size, c)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        n, h, w, c = x.shape
        s = self.size
        sums = x.reshape(n, h // s, s, w // s, s, c).sum(axis=(2, 4))
        if self.quantized:
            return avgpool_round(sums, s * s).astype(np.float32, copy=False)
        return sums * np.float32(1.0 / (s * s))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        s = self.size
        dx = np.repeat(np.repeat(dy, s, axis=1), s, axis=2)
        dx *= np.float32(1.0 / (s * s))
        return dx


class MaxPool2D(Layer):
    """Non-overlapping max pooling (exact on codes); gradient to the first maximum."""

    kind = "maxpool2d"

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = size
        self._arg: np.ndarray | None = None
        self._shape: tuple[int, ...] = ()

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = in_shape
        if h % self.size or w % self.size:
            raise ValueError(f"{self.size}x{self.size} pooling needs sizes divisible by it")
        return (h // self.size, w // self.size, c)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        n, h, w, c = x.shape
        s = self.size
        blocks = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 5, 2, 4)
        blocks = blocks.reshape(n, h // s, w // s, c, s * s)
        if train:
            self._arg = blocks.argmax(axis=-1)
            self._shape = x.shape
        return blocks.max(axis=-1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        assert self._arg is not None  # kept by forward(train=True)
        n, h, w, c = self._shape
        s = self.size
        onehot = np.arange(s * s) == self._arg[..., None]
        g = onehot * dy[..., None].astype(np.float32)
        g = g.reshape(n, h // s, w // s, c, s, s).transpose(0, 1, 4, 2, 5, 3)
        return g.reshape(n, h, w, c)


class Flatten(Layer):
    """NHWC images to feature vectors in (C, H, W) order, the model file's convention."""

    kind = "flatten"

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] = ()

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(in_shape)),)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._shape = x.shape
        if x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if len(self._shape) == 4:
            n, h, w, c = self._shape
            return dy.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        return dy.reshape(self._shape)
