"""The SAR ADC's parameters: capacitor array, comparator, timing, energy elements, and their
checks (see :mod:`netlists.sar_adc` for the circuit; the timing fractions and the checks
both converters share are in :mod:`netlists.adc_common`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np

from netlists.adc_common import AdcParamsBase, check_bits, check_gain, check_pos
from netlists.mismatch import SarMismatch, sar_mismatch_units

#: Wall time of one 8-bit conversion in ngspice 39 inside a 100-conversion testbench (s),
#: measured on the 2-core machine class (see the module docstring).
MEASURED_S_PER_CONVERSION_8BIT = 0.025

MIN_BITS = 1
MAX_BITS = 8

_OWNER = "SarAdcParams"


@dataclass(frozen=True)
class SarAdcParams(AdcParamsBase):
    """One SAR ADC instance: design values from the card plus its capacitor/offset draws.

    Parameters
    ----------
    bits
        Resolution N, 1..8.
    v_ref_v
        Reference voltage = full scale (V).
    v_dd_v
        Logic/comparator supply (V).
    clock_hz
        SAR clock (Hz); a conversion takes ``bits + 2`` periods.
    r_switch_ohm
        On-resistance of every DAC switch (ohm).
    c_parasitic_f
        Top-plate parasitic capacitance to ground (F).
    comparator_gain_v_per_v
        Small-signal gain of the comparator (V/V).
    c_comparator_f
        Capacitance switched per comparison (F).
    c_logic_f
        Logic capacitance switched per active SAR cycle (F).
    c_unit_f
        Nominal unit capacitor (F); used by :meth:`with_bits` and for the ideal LSB.
    c_bits_f
        Realized bit capacitors, LSB first, ``bits`` values (F).
    c_dummy_f
        Realized termination (dummy) capacitor, nominally ``c_unit_f`` (F).
    c_half_f
        Realized half-LSB shift capacitor, nominally ``c_unit_f / 2`` (F).
    comparator_offset_v
        Comparator offset of this instance (V): it keeps a bit when
        ``-V_top > comparator_offset_v``.
    """

    bits: int
    v_ref_v: float
    v_dd_v: float
    clock_hz: float
    r_switch_ohm: float
    c_parasitic_f: float
    comparator_gain_v_per_v: float
    c_comparator_f: float
    c_logic_f: float
    c_unit_f: float
    c_bits_f: tuple[float, ...]
    c_dummy_f: float
    c_half_f: float
    comparator_offset_v: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", check_bits(_OWNER, self.bits, MIN_BITS, MAX_BITS))
        for name in ("v_ref_v", "v_dd_v", "clock_hz", "r_switch_ohm", "c_unit_f"):
            object.__setattr__(self, name, check_pos(_OWNER, name, getattr(self, name)))
        for name in ("c_parasitic_f", "c_comparator_f", "c_logic_f"):
            object.__setattr__(
                self, name, check_pos(_OWNER, name, getattr(self, name), lo_open=False)
            )
        g = check_gain(_OWNER, self.comparator_gain_v_per_v)
        object.__setattr__(self, "comparator_gain_v_per_v", g)
        caps = tuple(float(c) for c in np.asarray(self.c_bits_f, dtype=float).reshape(-1))
        if len(caps) != self.bits:
            raise ValueError(
                f"SarAdcParams.c_bits_f has {len(caps)} values; bits = {self.bits} needs "
                f"{self.bits} (LSB first)"
            )
        for i, c in enumerate(caps):
            check_pos(_OWNER, f"c_bits_f[{i}]", c)
        object.__setattr__(self, "c_bits_f", caps)
        object.__setattr__(self, "c_dummy_f", check_pos(_OWNER, "c_dummy_f", self.c_dummy_f))
        object.__setattr__(self, "c_half_f", check_pos(_OWNER, "c_half_f", self.c_half_f))
        vos = float(self.comparator_offset_v)
        if not math.isfinite(vos) or abs(vos) > self.v_ref_v:
            raise ValueError(
                f"SarAdcParams.comparator_offset_v = {self.comparator_offset_v!r} must be "
                f"finite and within +-v_ref_v = {self.v_ref_v:g} V"
            )
        object.__setattr__(self, "comparator_offset_v", vos)

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def binary_weighted(
        cls,
        bits: int,
        c_unit_f: float,
        *,
        v_ref_v: float,
        v_dd_v: float,
        clock_hz: float,
        r_switch_ohm: float,
        c_parasitic_f: float,
        comparator_gain_v_per_v: float,
        c_comparator_f: float,
        c_logic_f: float,
        comparator_offset_v: float,
    ) -> SarAdcParams:
        """The design without mismatch: bit capacitors ``2**i c_unit_f``, dummy
        ``c_unit_f``, half-LSB ``c_unit_f / 2`` (F); the other values as the fields.
        :func:`cosim.circuits.sar_adc_params` gives the card's.

        Examples
        --------
        >>> p = SarAdcParams.binary_weighted(
        ...     3, 50e-15, v_ref_v=1.0, v_dd_v=1.0, clock_hz=1e8, r_switch_ohm=1e3,
        ...     c_parasitic_f=0.0, comparator_gain_v_per_v=1e3, c_comparator_f=0.0,
        ...     c_logic_f=0.0, comparator_offset_v=0.0)
        >>> p.c_bits_f[-1] / p.c_unit_f, p.c_half_f / p.c_unit_f
        (4.0, 0.5)
        """
        return cls(
            bits=bits,
            v_ref_v=v_ref_v,
            v_dd_v=v_dd_v,
            clock_hz=clock_hz,
            r_switch_ohm=r_switch_ohm,
            c_parasitic_f=c_parasitic_f,
            comparator_gain_v_per_v=comparator_gain_v_per_v,
            c_comparator_f=c_comparator_f,
            c_logic_f=c_logic_f,
            c_unit_f=c_unit_f,
            c_bits_f=tuple(c_unit_f * 2.0**i for i in range(int(bits))),
            c_dummy_f=c_unit_f,
            c_half_f=c_unit_f / 2,
            comparator_offset_v=comparator_offset_v,
        )

    def with_mismatch(self, draw: SarMismatch) -> SarAdcParams:
        """This design's nominal capacitors of ``c_unit_f`` with the relative errors of
        ``draw``, and its comparator offset plus ``draw.offset_delta_v``.

        Raises
        ------
        ValueError
            ``draw`` is for another resolution, or makes a capacitor non-positive.
        """
        units = sar_mismatch_units(self.bits)
        if draw.cap_rel_err.shape != units.shape:
            raise ValueError(
                f"a mismatch draw for {draw.bits} bits cannot apply to a {self.bits}-bit ADC"
            )
        caps = units * self.c_unit_f * (1.0 + draw.cap_rel_err)
        if np.any(caps <= 0):  # only for absurd sigmas; keep the error explicit
            raise ValueError(
                "adc.cap_mismatch_sigma_rel is so large that a sampled capacitor is <= 0"
            )
        return replace(
            self,
            c_bits_f=tuple(float(c) for c in caps[: self.bits]),
            c_dummy_f=float(caps[-2]),
            c_half_f=float(caps[-1]),
            comparator_offset_v=self.comparator_offset_v + draw.offset_delta_v,
        )

    def with_bits(self, bits: int) -> SarAdcParams:
        """The same design at another resolution: nominal capacitors of ``c_unit_f``
        (mismatch draws do not carry over), same offset, clock and energy capacitors."""
        cu = self.c_unit_f
        return replace(
            self,
            bits=bits,
            c_bits_f=tuple(cu * 2.0**i for i in range(int(bits))),
            c_dummy_f=cu,
            c_half_f=cu / 2,
        )

    def with_offset(self, comparator_offset_v: float) -> SarAdcParams:
        """The same instance with another comparator offset (V)."""
        return replace(self, comparator_offset_v=comparator_offset_v)

    # -- derived quantities -------------------------------------------------------------
    @property
    def cycles_per_conversion(self) -> int:
        """Clock cycles of one conversion: sample, ``bits`` trials, done."""
        return self.bits + 2

    @property
    def conversion_time_s(self) -> float:
        """Duration of one conversion (s)."""
        return self.cycles_per_conversion * self.period_s

    @property
    def c_sample_f(self) -> float:
        """Capacitance that samples the input: bit capacitors + dummy (F)."""
        return float(sum(self.c_bits_f) + self.c_dummy_f)

    @property
    def c_total_f(self) -> float:
        """Total top-plate capacitance (F)."""
        return self.c_sample_f + self.c_half_f + self.c_parasitic_f

    def analytic_weights(self) -> AnalyticWeights:
        """Top-plate weights implied by the capacitor values (the fitter measures them).

        Returns ``bit_weights_v`` (``V_ref C_i / C_tot``, LSB first), ``shift_v``
        (``-V_ref C_h / C_tot``) and ``input_gain`` (``C_s / C_tot``): the comparator sees
        ``V_top = sum b_i w_i + shift - gain * V_in``.
        """
        ct = self.c_total_f
        return {
            "bit_weights_v": self.v_ref_v * np.asarray(self.c_bits_f) / ct,
            "shift_v": -self.v_ref_v * self.c_half_f / ct,
            "input_gain": self.c_sample_f / ct,
        }


class AnalyticWeights(TypedDict):
    """What :meth:`SarAdcParams.analytic_weights` returns."""

    bit_weights_v: np.ndarray  # (bits,) V, LSB first
    shift_v: float  # V
    input_gain: float
