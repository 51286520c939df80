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

One module per idea: :mod:`~cosim.quant.grids` (the grids, their bounds and defaults),
:mod:`~cosim.quant.arithmetic` (requantization, pooling, input codes) and
:mod:`~cosim.quant.preprocessing` (raw data onto ``[0, 1]``). Every name is importable
from ``cosim.quant``.

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

from cosim.quant.arithmetic import (
    add_ratio,
    avgpool_round,
    input_codes,
    layer_scale,
    requantize,
    residual_add,
)
from cosim.quant.grids import (
    DEFAULT_HI,
    DEFAULT_IN_BITS,
    DEFAULT_W_MAX,
    MAX_BIAS_BITS,
    MAX_BITS,
    MIN_BIAS_BITS,
    MIN_BITS,
    ActGrid,
    BiasGrid,
    GridError,
    WeightGrid,
    check_bits,
    check_range,
    default_bias_bits,
)
from cosim.quant.preprocessing import Preprocessing

__all__ = [
    "DEFAULT_HI",
    "DEFAULT_IN_BITS",
    "DEFAULT_W_MAX",
    "MAX_BIAS_BITS",
    "MAX_BITS",
    "MIN_BIAS_BITS",
    "MIN_BITS",
    "ActGrid",
    "BiasGrid",
    "GridError",
    "Preprocessing",
    "WeightGrid",
    "add_ratio",
    "avgpool_round",
    "check_bits",
    "check_range",
    "default_bias_bits",
    "input_codes",
    "layer_scale",
    "requantize",
    "residual_add",
]
