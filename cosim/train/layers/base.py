"""What every layer is: :class:`Layer` (forward, backward) and a weight layer's grids,
:class:`LayerQuant`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.quant import ActGrid, BiasGrid, WeightGrid, layer_scale


@dataclass
class LayerQuant:
    """Quantization of one weight layer, set by the scheme before each forward pass.

    All grids ``None`` means a float layer. ``out_grid`` is ``None`` for the classifier head.
    """

    w_grid: WeightGrid | None = None
    in_grid: ActGrid | None = None
    out_grid: ActGrid | None = None
    b_grid: BiasGrid | None = None
    unipolar_grid: np.ndarray | None = None  # bool per filter: quantize on the unipolar grid
    unipolar_mix: float = 1.0  # alpha of the progressive bipolar -> unipolar transition

    @property
    def quantized(self) -> bool:
        return self.w_grid is not None

    @property
    def acc_unit(self) -> float:
        """Real value of one accumulator unit: ``u * step_in`` (1 for float layers)."""
        if self.w_grid is None:
            return 1.0
        assert self.in_grid is not None  # set with w_grid
        return self.w_grid.unit * self.in_grid.step

    @property
    def in_unit(self) -> float:
        return 1.0 if self.in_grid is None else self.in_grid.step

    @property
    def w_unit(self) -> float:
        return 1.0 if self.w_grid is None else self.w_grid.unit

    @property
    def scale(self) -> float:
        # hidden quantized layers only
        assert self.w_grid is not None and self.in_grid is not None
        assert self.out_grid is not None
        return layer_scale(self.w_grid, self.in_grid, self.out_grid)


class Layer:
    """Base class: ``forward(x, train)`` and ``backward(dy)``; no parameters."""

    kind = "layer"
    params: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params = {}
        self.grads: dict[str, np.ndarray] = {}

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError
