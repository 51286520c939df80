"""The quantization grids: activation/input (:class:`ActGrid`), weight (:class:`WeightGrid`)
and bias (:class:`BiasGrid`), their precision bounds and default ranges.

The grids' definitions are in :mod:`cosim.quant`'s module documentation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cosim.errors import CosimError

#: Allowed precision of activations and weights, in bits (1 bit = binary).
MIN_BITS = 1
MAX_BITS = 8
#: Allowed precision of the signed bias grid, in bits (sign included).
MIN_BIAS_BITS = 2
MAX_BIAS_BITS = 16
#: Default clip ranges of the literature (Bao et al.; Garcia-Redondo et al.).
DEFAULT_HI = 2.0
DEFAULT_W_MAX = 0.25
DEFAULT_IN_BITS = 8


class GridError(CosimError, ValueError):
    """A quantization grid was asked for with bits or a range out of bounds."""


def check_bits(bits: object, what: str, lo: int = MIN_BITS, hi: int = MAX_BITS) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise GridError(f"{what} must be an integer number of bits, got {bits!r}")
    if not lo <= int(bits) <= hi:
        raise GridError(f"{what} = {bits} is out of range: choose {lo}..{hi} bits")
    return int(bits)


def check_range(value: object, what: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]  # any object: float() says what it takes
    except (TypeError, ValueError):
        raise GridError(f"{what} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0.0:
        raise GridError(f"{what} must be a positive finite number, got {value!r}")
    return v


def default_bias_bits(w_bits: int) -> int:
    """Default bias precision for ``w_bits``-bit weights: ``w_bits + 2`` (sign included).

    Examples
    --------
    >>> default_bias_bits(4)
    6
    """
    return min(check_bits(w_bits, "w_bits") + 2, MAX_BIAS_BITS)


@dataclass(frozen=True)
class ActGrid:
    """Unsigned activation grid ``[0, hi]`` with ``2**bits`` codes (an ADC or a DAC).

    Parameters
    ----------
    hi
        Full scale of the range (the value of code ``2**bits``, one step above the top code).
    bits
        Precision a, 1..8.

    Examples
    --------
    >>> ActGrid(2.0, 2).values([0, 3]).tolist()
    [0.0, 1.5]
    """

    hi: float
    bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "hi", check_range(self.hi, "activation range hi"))
        object.__setattr__(self, "bits", check_bits(self.bits, "activation bits"))

    @property
    def step(self) -> float:
        """One LSB: ``hi / 2**bits``."""
        return self.hi / (1 << self.bits)

    @property
    def top_code(self) -> int:
        """Largest code, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    def codes(self, x: Any, dtype: Any = np.int64) -> np.ndarray:
        """Quantize real values: ``clip(floor(x / step + 1/2), 0, 2**bits - 1)``."""
        t = np.asarray(x, dtype=np.float64) / self.step
        t += 0.5
        np.floor(t, out=t)
        np.clip(t, 0, self.top_code, out=t)
        return t.astype(dtype)

    def values(self, codes: Any) -> np.ndarray:
        """Real values of codes: ``codes * step`` (float64)."""
        return np.asarray(codes, dtype=np.float64) * self.step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ActGrid:
        return cls(hi=d["hi"], bits=d["bits"])


@dataclass(frozen=True)
class WeightGrid:
    """Weight grid: ``w = n * u`` with ``u = w_max / (2**bits - 1)``.

    Bipolar levels are the odd integers in ``[-(2**bits - 1), 2**bits - 1]``; unipolar levels
    the integers in ``[0, 2**bits - 1]``.

    Examples
    --------
    >>> g = WeightGrid(0.25, 1)
    >>> g.levels([-0.1, 0.3]).tolist(), g.levels([-0.1, 0.3], unipolar=True).tolist()
    ([-1, 1], [0, 1])
    """

    w_max: float
    bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "w_max", check_range(self.w_max, "weight range w_max"))
        object.__setattr__(self, "bits", check_bits(self.bits, "weight bits"))

    @property
    def n_max(self) -> int:
        """Largest level magnitude, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def unit(self) -> float:
        """The unit u of the integer levels: ``w_max / (2**bits - 1)``."""
        return self.w_max / self.n_max

    def levels(self, w: Any, unipolar: Any = False, dtype: Any = np.int64) -> np.ndarray:
        """Integer levels of real weights.

        Parameters
        ----------
        w
            Weights; the first axis indexes output filters.
        unipolar
            A bool, or a bool array of shape ``(w.shape[0],)`` (one flag per filter).
        dtype
            dtype of the result (training uses float32 integer values).
        """
        t = np.asarray(w, dtype=np.float64) / self.unit
        bip = np.floor(t * 0.5)
        bip *= 2.0
        bip += 1.0
        np.clip(bip, -self.n_max, self.n_max, out=bip)
        mask = np.asarray(unipolar, dtype=bool)
        if mask.ndim == 0 and not mask:
            return bip.astype(dtype)
        t += 0.5
        np.floor(t, out=t)
        np.clip(t, 0, self.n_max, out=t)
        if mask.ndim == 0:
            return t.astype(dtype)
        mask = mask.reshape(mask.shape + (1,) * (t.ndim - 1))
        return np.where(mask, t, bip).astype(dtype)

    def on_grid(self, n: Any, unipolar: Any = False) -> bool:
        """True if every level is an allowed integer for its filter's polarity."""
        n = np.asarray(n)
        if n.dtype.kind not in "iu":
            return False
        n = n.astype(np.int64)
        bip_ok = (np.abs(n) <= self.n_max) & (n % 2 == 1)
        uni_ok = (n >= 0) & (n <= self.n_max)
        mask = np.asarray(unipolar, dtype=bool)
        if mask.ndim == 1:
            mask = mask.reshape(mask.shape + (1,) * (n.ndim - 1))
        return bool(np.all(np.where(mask, uni_ok, bip_ok)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WeightGrid:
        return cls(w_max=d["w_max"], bits=d["bits"])


@dataclass(frozen=True)
class BiasGrid:
    """Signed bias grid ``b = n_b * step`` with ``|n_b| <= 2**(bits - 1) - 1``.

    Build it with :meth:`for_layer`, which ties ``step = u * hi_in`` (the bias row is driven
    at the input DAC's full scale through devices of the weight grid).

    Examples
    --------
    >>> g = BiasGrid.for_layer(WeightGrid(0.25, 4), ActGrid(2.0, 3), bits=6)
    >>> round(g.step, 6), g.n_max
    (0.033333, 31)
    """

    step: float
    bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "step", check_range(self.step, "bias step"))
        object.__setattr__(
            self, "bits", check_bits(self.bits, "bias bits", MIN_BIAS_BITS, MAX_BIAS_BITS)
        )

    @classmethod
    def for_layer(cls, w_grid: WeightGrid, in_grid: ActGrid, bits: int) -> BiasGrid:
        """The bias grid of a layer with weight grid ``w_grid`` and input grid ``in_grid``."""
        return cls(step=w_grid.unit * in_grid.hi, bits=bits)

    @property
    def n_max(self) -> int:
        """Largest level magnitude N_b = ``2**(bits - 1) - 1``."""
        return (1 << (self.bits - 1)) - 1

    @property
    def b_max(self) -> float:
        """Largest representable bias magnitude, ``N_b * step``."""
        return self.n_max * self.step

    def levels(self, b: Any, dtype: Any = np.int64) -> np.ndarray:
        """Integer levels: ``clip(floor(b / step + 1/2), -N_b, N_b)``."""
        t = np.asarray(b, dtype=np.float64) / self.step
        t += 0.5
        np.floor(t, out=t)
        np.clip(t, -self.n_max, self.n_max, out=t)
        return t.astype(dtype)

    def on_grid(self, n: Any) -> bool:
        n = np.asarray(n)
        return bool(n.dtype.kind in "iu" and np.all(np.abs(n.astype(np.int64)) <= self.n_max))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BiasGrid:
        return cls(step=d["step"], bits=d["bits"])
