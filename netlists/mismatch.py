"""The one sampler of a SAR ADC instance's random mismatch.

Both sides of cosim build a Monte-Carlo ADC instance from the same draws: the netlist
(:meth:`netlists.sar_adc.SarAdcParams.sample`, realized capacitors and offset in SPICE) and
the surrogate (:func:`cosim.surrogates.adc.sample_instance`, the fitted nominal with those
errors applied). Both call :func:`draw_sar_mismatch`, so equal generator states give the
same instance on both sides and the draw order is written once.

It lives in ``netlists/`` beside its first consumer and needs nothing but NumPy and plain
numbers (no card, no cosim import): netlists depend on parameter objects only, and the
surrogate package can import it without pulling in the card or a simulator.

Draw order (fixed: changing it changes every seeded Monte-Carlo instance):

1. ``bits + 2`` standard normals, one per capacitor in the order of
   :func:`sar_mismatch_units` (the bit capacitors LSB first, the dummy, the half-LSB
   capacitor); a capacitor of ``m`` unit capacitors gets the relative error
   ``z * cap_sigma_rel / sqrt(m)`` (Pelgrom: independent unit capacitors);
2. one standard normal for the comparator offset, ``offset_sigma_v * z``.

Examples
--------
>>> import numpy as np
>>> d = draw_sar_mismatch(np.random.default_rng(0), 3, 0.01, 1e-3)
>>> d.cap_rel_err.shape, round(d.offset_delta_v, 6)
((5,), 0.000362)
>>> sar_mismatch_units(3).tolist()
[1.0, 2.0, 4.0, 1.0, 0.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def check_sigmas(**sigmas: float) -> None:
    """Every sigma of a mismatch draw finite and ``>= 0`` (the error names it)."""
    for name, v in sigmas.items():
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} = {v!r} must be finite and >= 0")


def pelgrom_errors(rng: np.random.Generator, units: np.ndarray, sigma_rel: float) -> np.ndarray:
    """Relative errors of elements of ``units`` unit elements each (one standard normal
    per element, in order): ``z * sigma_rel / sqrt(m)`` (Pelgrom: independent units)."""
    return rng.standard_normal(units.size) * sigma_rel / np.sqrt(units)


def sar_mismatch_units(bits: int) -> np.ndarray:
    """Unit capacitors in each DAC capacitor, in the order of the mismatch draws: the bit
    capacitors (LSB first, ``2**i``), the dummy (1) and the half-LSB capacitor (1/2)."""
    return np.array([2.0**i for i in range(int(bits))] + [1.0, 0.5])


@dataclass(frozen=True)
class SarMismatch:
    """One SAR instance's random deviations from its nominal design.

    Parameters
    ----------
    cap_rel_err
        Relative error of each capacitor, shape ``(bits + 2,)``, in the order of
        :func:`sar_mismatch_units` (read-only).
    offset_delta_v
        Comparator offset added to the nominal's (V).
    """

    cap_rel_err: np.ndarray
    offset_delta_v: float

    @property
    def bits(self) -> int:
        """Resolution the draw was made for."""
        return int(self.cap_rel_err.size) - 2


def draw_sar_mismatch(
    rng: np.random.Generator, bits: int, cap_sigma_rel: float, offset_sigma_v: float
) -> SarMismatch:
    """Draw one SAR instance's capacitor errors and comparator offset (see the module).

    Parameters
    ----------
    rng
        Source of the draws; advanced by exactly ``bits + 3`` standard normals.
    bits
        Resolution of the instance.
    cap_sigma_rel
        Relative sigma of one unit capacitor (``adc.cap_mismatch_sigma_rel``).
    offset_sigma_v
        Instance-to-instance comparator offset sigma (V; ``adc.comparator_offset_sigma_v``).

    Returns
    -------
    SarMismatch
        The draws; apply them with :meth:`netlists.sar_adc.SarAdcParams.with_mismatch` or
        :func:`cosim.surrogates.adc.with_mismatch`.
    """
    check_sigmas(cap_sigma_rel=cap_sigma_rel, offset_sigma_v=offset_sigma_v)
    err = pelgrom_errors(rng, sar_mismatch_units(bits), cap_sigma_rel)
    err.setflags(write=False)
    d_os = float(offset_sigma_v) * float(rng.standard_normal())
    return SarMismatch(err, d_os)
