"""How raw data becomes the first layer's input: :class:`Preprocessing`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cosim.quant.arithmetic import input_codes
from cosim.quant.grids import GridError, check_bits, check_range


@dataclass(frozen=True)
class Preprocessing:
    """How raw data becomes the first layer's input: ``x01 = (raw - offset) / scale``.

    Quantized models then take ``input_codes(x01, in_bits)``; the float model takes
    ``x = x01 * hi`` unquantized.

    Parameters
    ----------
    offset, scale
        Affine map of raw feature values onto ``[0, 1]`` (values outside are clipped by the
        input quantizer).
    in_bits
        Input DAC precision, 1..8.
    input_shape
        Shape of one sample as the model takes it: ``(features,)`` or ``(C, H, W)``.

    Examples
    --------
    >>> p = Preprocessing(offset=0.0, scale=256.0, in_bits=8, input_shape=(2,))
    >>> p.codes(np.array([[0, 255]])).tolist()
    [[0, 255]]
    """

    offset: float
    scale: float
    in_bits: int
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_range(self.scale, "preprocessing scale"))
        off = float(self.offset)
        if not math.isfinite(off):
            raise GridError(f"preprocessing offset must be finite, got {self.offset!r}")
        object.__setattr__(self, "offset", off)
        object.__setattr__(self, "in_bits", check_bits(self.in_bits, "input bits"))
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))

    def unit(self, raw: Any) -> np.ndarray:
        """``(raw - offset) / scale`` as float64."""
        return (np.asarray(raw, dtype=np.float64) - self.offset) / self.scale

    def codes(self, raw: Any, dtype: Any = np.int64) -> np.ndarray:
        """Input codes of raw samples (8- and 16-bit integer samples through a table of
        every value they can take: the same codes)."""
        raw = np.asarray(raw)
        if raw.dtype.kind in "iu" and raw.dtype.itemsize <= 2 and raw.size > 4096:
            info = np.iinfo(raw.dtype)
            values = np.arange(info.min, info.max + 1, dtype=raw.dtype)
            table = input_codes(self.unit(values), self.in_bits, dtype=dtype)
            return table[raw.astype(np.int64) - info.min] if info.min else table[raw]
        return input_codes(self.unit(raw), self.in_bits, dtype=dtype)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(
            offset=d["offset"],
            scale=d["scale"],
            in_bits=d["in_bits"],
            input_shape=tuple(d["input_shape"]),
        )
