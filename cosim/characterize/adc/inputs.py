"""The SAR characterization's input design: where the conversions of each testbench lie.

Inputs are placed from the instance's analytic model (capacitor values and offset, no
SPICE): fit inputs over the full range and every skip count, held-out inputs at random and
near the instance's code transitions, skip-sweep inputs uniform over each skip count's
legal range.
"""

from __future__ import annotations

import numpy as np

from cosim.surrogates.adc import SarAdcModel
from netlists.sar_adc import SarAdcParams


def analytic_model(params: SarAdcParams) -> SarAdcModel:
    """The model implied by an instance's capacitor values and offset (no SPICE).

    Used to place held-out inputs near the instance's transitions and to pick legal skip
    counts; the surrogate itself is fitted from SPICE.
    """
    w = params.analytic_weights()
    zeros = np.zeros(params.bits)
    return SarAdcModel(
        bits=params.bits,
        v_ref_v=params.v_ref_v,
        bit_weights_v=w["bit_weights_v"],
        shift_v=float(w["shift_v"]),
        input_gain=float(w["input_gain"]),
        comparator_offset_v=params.comparator_offset_v,
        energy_ref_j=zeros,
        energy_dd_j=zeros,
        conversion_time_s=params.conversion_time_s,
    )


def legal_skip(codes: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """A random legal skip count per code: ``k`` in ``0 .. min(N-1, N - bitlength(code))``,
    so that ``code < 2**(N - k)``."""
    c = np.asarray(codes, dtype=np.int64)
    bitlen = np.where(c > 0, np.floor(np.log2(np.maximum(c, 1))).astype(np.int64) + 1, 0)
    kmax = np.minimum(bits - 1, bits - bitlen)
    return np.floor(rng.random(c.shape) * (kmax + 1)).astype(np.int64)


def fit_inputs(
    params: SarAdcParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Fitting conversions: half full conversions over ``[-0.05, 1.05] V_ref``, half with
    skip counts cycling through ``1 .. N-1`` at inputs uniform over their legal range."""
    nb = params.bits
    n0 = n // 2 if nb > 1 else n
    v0 = rng.uniform(-0.05, 1.05, n0) * params.v_ref_v
    k1 = 1 + np.arange(n - n0) % max(nb - 1, 1)
    hi = (2.0 ** (nb - k1) - 0.5) * params.lsb_v
    v1 = rng.uniform(0.0, 1.0, k1.size) * hi
    return np.concatenate([v0, v1]), np.concatenate([np.zeros(n0, np.int64), k1])


def heldout_inputs(
    params: SarAdcParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out conversions: half random over ``[-0.05, 1.05] V_ref``, half within
    ``±0.25 LSB`` of the instance's transitions; legal random skips on half of them."""
    truth = analytic_model(params)
    n_rand = n // 2
    v_rand = rng.uniform(-0.05, 1.05, n_rand) * params.v_ref_v
    t = truth.thresholds()
    pick = rng.integers(0, t.size, n - n_rand)
    v_near = t[pick] + rng.uniform(-0.25, 0.25, pick.size) * params.lsb_v
    v = np.concatenate([v_rand, v_near])
    order = rng.permutation(v.size)
    v = v[order]
    k = legal_skip(truth.convert(v), params.bits, rng)
    k[rng.random(v.size) < 0.5] = 0
    return v, k


def skip_sweep_range(params: SarAdcParams) -> np.ndarray:
    """``(bits, 2)``: the legal input range ``[0, (2**(N-k) - 1/2) LSB)`` of skip count ``k``,
    over which the skip sweep draws its inputs uniformly."""
    k = np.arange(params.bits)
    return np.column_stack([np.zeros(k.size), (2.0 ** (params.bits - k) - 0.5) * params.lsb_v])


def skip_sweep_inputs(
    params: SarAdcParams, per_skip: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    k = np.repeat(np.arange(params.bits), per_skip)
    hi = skip_sweep_range(params)[k, 1]
    return rng.uniform(0.0, 1.0, k.size) * hi, k
