"""The quantizers: the one hardware contract shared by training and the analog engine.

Everything that turns a real number into an integer code, or an integer accumulator into
the next layer's code, is defined here once. ``cosim train`` uses these functions in its
forward pass and ``cosim evaluate`` uses the same functions, so the trained model and the
engine agree bit for bit.

Grids
-----
Activation grid (X/Y, unsigned, :class:`ActGrid`)
    Range ``[0, hi]``, ``bits`` a in 1..8, ``step = hi / 2**a``, codes ``k = 0 .. 2**a - 1``
    (the top value is ``hi - step``, like an ADC: ``code * V_ref / 2**N``). Quantizing a
    real value rounds half up, as an ADC with thresholds at ``(k - 1/2) LSB`` does:
    ``k = clip(floor(x / step + 1/2), 0, 2**a - 1)``. ``np.round`` (half to even) is never
    used.
Input grid
    The first layer's input (driven by DACs) is an :class:`ActGrid` with the same ``hi`` and
    ``in_bits`` (default 8). :class:`Preprocessing` maps raw data to ``x01`` in ``[0, 1]``;
    the input code is ``clip(floor(x01 * 2**in_bits + 1/2), 0, 2**in_bits - 1)``, which is
    the activation quantizer applied to ``x = x01 * hi``. Codes do not depend on ``hi``.
Weight grid (W, :class:`WeightGrid`)
    ``w_max`` (default 0.25), ``bits`` b in 1..8, unit ``u = w_max / (2**b - 1)``.
    Bipolar weights (a differential device pair): ``w = n * u`` with ``n`` an **odd** integer
    in ``[-(2**b - 1), 2**b - 1]`` -- 2**b uniform levels across ``[-w_max, w_max]``
    including both ends (b = 1 is binary, ``+-w_max``); ``n`` is the nearest odd integer to
    ``w / u`` (ties upward), clipped. Unipolar weights (one device): ``w = n * u`` with
    ``n`` an integer in ``[0, 2**b - 1]``, ``n = clip(floor(w / u + 1/2), 0, 2**b - 1)``.
Bias grid (B, :class:`BiasGrid`)
    A bias is realised by a bias row driven at the DAC full scale, input value ``hi`` of the
    layer's input grid, through devices on the weight grid, so its step is
    ``step_b = u * hi_in`` and ``b = n_b * step_b`` with ``n_b`` an integer in
    ``[-N_b, N_b]``, ``N_b = 2**(b_bits - 1) - 1``. The default ``b_bits = w_bits + 2``
    (:func:`default_bias_bits`) gives every precision about the same bias range,
    ``N_b * u * hi ~= 2 * w_max * hi`` (1.0 with the default grids), and is capped at 16.

Integer arithmetic of one crossbar layer
----------------------------------------
With input codes ``k_x`` on a grid of step ``step_in = hi_in / 2**bits_in``::

    acc = sum(n_w * k_x) + n_b * 2**bits_in        # exact integers (int64)

is the pre-activation in units of ``u * step_in``: ``z = u * step_in * acc``. A hidden
layer's output code is ``requantize(acc, layer_scale(...), a)`` (:func:`requantize`,
:func:`layer_scale`); the classifier head's logits are ``u * step_in * acc`` (float64).
Average pooling on codes rounds half up in integers, ``(sum + n // 2) // n``
(:func:`avgpool_round`); max pooling is exact. :mod:`cosim.model.forward` runs a whole
model this way.

Examples
--------
>>> g = ActGrid(hi=2.0, bits=3)
>>> g.step, g.top_code
(0.25, 7)
>>> g.codes([0.124, 0.125, 1.9, -1.0]).tolist()
[0, 1, 7, 0]
>>> WeightGrid(w_max=0.25, bits=2).levels([-0.3, -0.01, 0.0, 0.2]).tolist()
[-3, -1, 1, 3]
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


def _check_bits(bits: object, what: str, lo: int = MIN_BITS, hi: int = MAX_BITS) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise GridError(f"{what} must be an integer number of bits, got {bits!r}")
    if not lo <= int(bits) <= hi:
        raise GridError(f"{what} = {bits} is out of range: choose {lo}..{hi} bits")
    return int(bits)


def _check_range(value: object, what: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
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
    return min(_check_bits(w_bits, "w_bits") + 2, MAX_BIAS_BITS)


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
        object.__setattr__(self, "hi", _check_range(self.hi, "activation range hi"))
        object.__setattr__(self, "bits", _check_bits(self.bits, "activation bits"))

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
        object.__setattr__(self, "w_max", _check_range(self.w_max, "weight range w_max"))
        object.__setattr__(self, "bits", _check_bits(self.bits, "weight bits"))

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
        object.__setattr__(self, "step", _check_range(self.step, "bias step"))
        object.__setattr__(
            self, "bits", _check_bits(self.bits, "bias bits", MIN_BIAS_BITS, MAX_BIAS_BITS)
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


def layer_scale(w_grid: WeightGrid, in_grid: ActGrid, out_grid: ActGrid) -> float:
    """Requantization scale of a hidden layer: ``u * step_in / step_out`` (this exact order).

    Examples
    --------
    >>> layer_scale(WeightGrid(0.25, 4), ActGrid(2.0, 8), ActGrid(2.0, 3))
    0.0005208333333333333
    """
    return w_grid.unit * in_grid.step / out_grid.step


def requantize(acc: Any, scale: float, bits: int, dtype: Any = np.int64) -> np.ndarray:
    """Output codes of a hidden layer from its integer accumulator.

    ``clip(floor(acc * scale + 1/2), 0, 2**bits - 1)``, computed in float64 as two rounded
    operations (multiply, then add 1/2). The training forward and the analog engine both
    call this function, so their codes are identical.

    Parameters
    ----------
    acc
        Integer accumulators (int64, or float arrays holding exact integers below 2**53).
    scale
        :func:`layer_scale` of the layer.
    bits
        Output precision a.
    dtype
        dtype of the result.

    Examples
    --------
    >>> requantize(np.array([-5, 0, 29, 30, 10_000]), 1 / 60, 3).tolist()
    [0, 0, 0, 1, 7]
    """
    bits = _check_bits(bits, "activation bits")
    t = np.multiply(np.asarray(acc, dtype=np.float64), np.float64(scale))
    t += 0.5
    np.floor(t, out=t)
    np.clip(t, 0, (1 << bits) - 1, out=t)
    return t.astype(dtype)


def avgpool_round(sums: Any, n: int) -> np.ndarray:
    """Average-pool re-quantization of code sums: ``(sum + n // 2) // n`` (round half up).

    Works on integer arrays and on float arrays holding exact integers (same result).

    Examples
    --------
    >>> avgpool_round(np.array([0, 1, 2, 5, 6]), 4).tolist()
    [0, 0, 1, 1, 2]
    """
    sums = np.asarray(sums)
    if sums.dtype.kind in "iu" and n & (n - 1) == 0:  # a power of two: an exact shift
        return (sums + (n // 2)) >> (n.bit_length() - 1)
    return np.floor_divide(sums + (n // 2), n)


def input_codes(x01: Any, bits: int, dtype: Any = np.int64) -> np.ndarray:
    """Input DAC codes of data scaled to ``[0, 1]``: ``clip(floor(x01 * 2**bits + 1/2), ...)``.

    Examples
    --------
    >>> input_codes([0.0, 0.5, 1.0], 8).tolist()
    [0, 128, 255]
    """
    bits = _check_bits(bits, "input bits")
    t = np.asarray(x01, dtype=np.float64) * float(1 << bits)
    t += 0.5
    np.floor(t, out=t)
    np.clip(t, 0, (1 << bits) - 1, out=t)
    return t.astype(dtype)


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
        object.__setattr__(self, "scale", _check_range(self.scale, "preprocessing scale"))
        off = float(self.offset)
        if not math.isfinite(off):
            raise GridError(f"preprocessing offset must be finite, got {self.offset!r}")
        object.__setattr__(self, "offset", off)
        object.__setattr__(self, "in_bits", _check_bits(self.in_bits, "input bits"))
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
